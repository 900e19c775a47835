//! Token-status indexes (`flows::status_list`) handed out from memory: a node reserves
//! [`BLOCK_SIZE`] at a time (one database write per block), so issuing a token writes nothing for
//! its status. An index is never handed out twice.

use tessera_proto::UnixTime;

use crate::store::Store;

/// Indexes a node reserves at once.
pub(crate) const BLOCK_SIZE: u64 = 1024;

/// Hands out token-status indexes from blocks reserved in the store.
#[derive(Default)]
pub struct Allocator {
    /// The next index and the end of the current block.
    range: std::sync::Mutex<(u64, u64)>,
    /// One reservation at a time per node.
    refill: tokio::sync::Mutex<()>,
}

impl Allocator {
    fn take(&self) -> Option<u64> {
        let mut range = self.range.lock().unwrap_or_else(|p| p.into_inner());
        (range.0 < range.1).then(|| {
            range.0 += 1;
            range.0 - 1
        })
    }

    /// A fresh index.
    pub async fn next(&self, store: &Store, now: UnixTime) -> anyhow::Result<u64> {
        if let Some(index) = self.take() {
            return Ok(index);
        }
        let _one = self.refill.lock().await;
        if let Some(index) = self.take() {
            return Ok(index);
        }
        let block = store.reserve_status_block(now.secs()).await?;
        let start = block.saturating_sub(1).saturating_mul(BLOCK_SIZE);
        *self.range.lock().unwrap_or_else(|p| p.into_inner()) = (start + 1, start + BLOCK_SIZE);
        Ok(start)
    }
}
