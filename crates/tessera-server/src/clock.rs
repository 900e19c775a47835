//! The only place that reads the system clock. Everything else takes `now: UnixTime`.

use tessera_proto::UnixTime;

/// A source of the current time, injected into `AppState` so tests can fix and advance it.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> UnixTime;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> UnixTime {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        UnixTime(since_epoch.as_secs())
    }
}
