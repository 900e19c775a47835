//! A bounded TTL cache (moka) that writers can invalidate without racing readers: a reader
//! that loaded a value before a change never leaves it in the cache after the change.

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Values cached by key; [`InvalidatingCache::invalidate`] after every change to the source.
pub(crate) struct InvalidatingCache<K, V> {
    entries: moka::sync::Cache<K, V>,
    generation: Arc<AtomicU64>,
}

impl<K, V> Clone for InvalidatingCache<K, V> {
    fn clone(&self) -> Self {
        InvalidatingCache { entries: self.entries.clone(), generation: self.generation.clone() }
    }
}

/// Taken before reading the source; required to insert what was read.
pub(crate) struct Ticket(u64);

impl<K: Hash + Eq + Clone + Send + Sync + 'static, V: Clone + Send + Sync + 'static> InvalidatingCache<K, V> {
    pub(crate) fn new(capacity: u64, ttl: Duration) -> Self {
        InvalidatingCache {
            entries: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
            generation: Arc::default(),
        }
    }

    pub(crate) fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.entries.get(key)
    }

    /// Call before reading the source for a value to insert later.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    /// Inserts a value read from the source after `ticket` was taken. If any invalidation
    /// happened since, the entry is removed again: an invalidation either ran after our insert
    /// (and removed it) or bumped the generation before our re-check.
    pub(crate) fn insert(&self, ticket: Ticket, key: K, value: V) {
        self.entries.insert(key.clone(), value);
        if self.generation.load(Ordering::Acquire) != ticket.0 {
            self.entries.invalidate(&key);
        }
    }

    /// Call after a change to the source that may touch any entry.
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
    }

    /// Call after the source changed.
    pub(crate) fn invalidate<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
    {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_an_invalidation_is_not_kept() {
        let cache = InvalidatingCache::new(10, Duration::from_secs(60));
        let ticket = cache.ticket();
        // The source changes while the reader still holds its stale value.
        cache.invalidate("k");
        cache.insert(ticket, "k".to_owned(), 1);
        assert_eq!(cache.get("k"), None);
        let ticket = cache.ticket();
        cache.insert(ticket, "k".to_owned(), 2);
        assert_eq!(cache.get("k"), Some(2));
        cache.invalidate("k");
        assert_eq!(cache.get("k"), None);
    }
}
