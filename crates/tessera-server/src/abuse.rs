//! Abuse controls (SECURITY-TESTS.md BF-01…BF-03, RT-14):
//!
//! - **Failed client authentication** at `/token`, `/introspect`, `/revoke`, `/par`, the
//!   revocation feed and `/split-tokens` is counted per (claimed `client_id`, address) and per
//!   address; past the allowance (`auth_failure_allowance`, 10 by default, then one every 6 s)
//!   that pair or address gets 429 with `Retry-After` before anything is checked — the same for
//!   a known and an unknown client id, so nothing is enumerated. A client id alone is never
//!   blocked before its credential is checked: client ids are public, and a stranger's failures
//!   must not lock the real client out (docs/threat-model.md, T-01). Past a generous per-id
//!   allowance (100 times the per-address one) a *failed* attempt is answered 429 instead of
//!   401, from every address; a correct credential still passes.
//! - **Token scanning**: introspection answers `active: false` to a client that is not a
//!   resource server at most 100 times at once (then one every 100 ms); past that, 429. A
//!   resource server (`introspection: true`) legitimately introspects unknown tokens that its
//!   own callers present, so it is not throttled here: the gateway and `tessera-verify` bound
//!   those lookups per address of *their* callers, with a negative cache.
//! - **Passwords**: after 5 consecutive failures a user is locked out for 30 s, doubling with each
//!   further failure up to an hour (stored, so every node and restart agrees). While locked, the
//!   login form answers 429 without checking the password, and codes and refresh tokens of the
//!   user are not redeemed (RT-14: a grant started before the lockout cannot be finished during
//!   it). Unknown usernames are locked the same way in memory, so a lock reveals nothing. Failed
//!   passwords are also counted per IP address (20 at once, then one every 30 s).
//! - **Request rates** on those endpoints (`rate_limit_per_client`, `rate_limit_per_ip`,
//!   requests per second; 0 turns one off). A request that authenticated a confidential client
//!   spends that client's budget only; any other request (no credential, a wrong one, a public
//!   client, which anyone can name) spends its address's budget. So no stranger can spend a
//!   budget an authenticated client relies on. Introspection by a resource server spends
//!   nothing: it answers for its own callers, whom the gateway throttles.
//!
//! - **Pending authorization requests**: a browser nobody is signed in to stores nothing (its
//!   request is sealed into the login page's handle, `flows::pending`). A signed-in browser's
//!   `GET /authorize` that needs a consent page (or a new login) stores the request; each
//!   address may open [`PENDING_REQUESTS`] at once, then one every two seconds (429 page past
//!   that), so one address can hold at most about 360 rows at a time (they expire after ten
//!   minutes).
//!
//! Addresses are the peer's, or — from a peer in `trusted_proxies` — the nearest address in
//! `X-Forwarded-For` that is not itself a trusted proxy. IPv6 addresses are keyed by their /64
//! (one host usually holds a whole /64), IPv4-mapped ones as IPv4.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Pending authorization requests one address may open at once (each is a row of up to a few
/// KB kept for `INTERACTION_TTL`); then one every two seconds. docs/threat-model.md T-08.
pub(crate) const PENDING_REQUESTS: u32 = 60;

/// Registrations one address may make at once (`/register`); then one a minute.
pub(crate) const REGISTRATIONS: u32 = 10;

/// Client metadata documents one address may make the server fetch at once; then one every six
/// seconds (`flows::metadata_document`).
pub(crate) const DOCUMENT_FETCHES: u32 = 10;

/// Device codes one address may ask for at once (`/device_authorization`); then one every
/// three seconds.
pub(crate) const DEVICE_AUTHORIZATIONS: u32 = 10;

/// Wrong user codes one address, and one account, may type at `/device` at once; then one
/// every 30 seconds.
pub(crate) const USER_CODE_GUESSES: u32 = 5;

/// Consecutive password failures before a lockout.
pub(crate) const LOCK_AFTER: u64 = 5;
/// The first lockout; each further failure doubles it.
pub(crate) const FIRST_LOCK: u64 = 30;
/// The longest lockout.
pub(crate) const LONGEST_LOCK: u64 = 3600;

/// How long a user is locked after `failures` consecutive failures (0: not yet).
pub(crate) fn lock_seconds(failures: u64) -> u64 {
    if failures < LOCK_AFTER {
        return 0;
    }
    let doublings = u32::try_from(failures - LOCK_AFTER).unwrap_or(u32::MAX).min(16);
    FIRST_LOCK.saturating_mul(1 << doublings).min(LONGEST_LOCK)
}

/// Counts failures per key; a key past its allowance is blocked until the allowance refills.
pub struct Throttle {
    failures: DefaultKeyedRateLimiter<String>,
    blocked: moka::sync::Cache<String, Instant>,
    /// Whether any key may be blocked: until a key is, [`Throttle::blocked`] is one atomic load
    /// (the common case costs nothing on the hot path; a cache lookup per request measured as
    /// much as 15 % of introspection throughput).
    any_blocked: std::sync::atomic::AtomicBool,
}

impl Throttle {
    /// Blocks a key at its `allowance`-th failure (so the next attempt is refused).
    fn new(allowance: u32, refill_every: Duration) -> Throttle {
        let burst = NonZeroU32::new(allowance.saturating_sub(1).max(1)).unwrap_or(NonZeroU32::MIN);
        let quota =
            Quota::with_period(refill_every).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst);
        Throttle::with_quota(quota)
    }

    /// Blocks a key once it has spent more than `quota` allows. The blocked set is bounded
    /// (100,000 keys, an hour each at most); the counters are dropped by [`Abuse::forget_old`].
    fn with_quota(quota: Quota) -> Throttle {
        Throttle {
            failures: RateLimiter::keyed(quota),
            blocked: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(3600)).build(),
            any_blocked: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Seconds until `key` may try again, while it is blocked.
    pub fn blocked(&self, key: &str) -> Option<u64> {
        if !self.any_blocked.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let until = self.blocked.get(key)?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then(|| left.as_secs().max(1))
    }

    /// Counts a failure of `key`; past the allowance the key waits a second at least.
    pub fn failed(&self, key: &str) {
        self.count(key, Duration::from_secs(1));
    }

    /// Counts one use of `key`'s allowance; past it the key waits as long as the quota says, at
    /// least `least`.
    fn count(&self, key: &str, least: Duration) {
        let key = key.to_owned();
        if let Err(not_until) = self.failures.check_key(&key) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            // Raised before the insert, so a reader that sees the key also sees the flag.
            self.any_blocked.store(true, std::sync::atomic::Ordering::Release);
            self.blocked.insert(key, Instant::now() + wait.max(least));
        }
    }

    fn forget_old(&self) {
        self.failures.retain_recent();
        self.failures.shrink_to_fit();
        // Nothing blocked any more: back to the fast path. A key blocked between the count and
        // the store is missed until its next failure raises the flag again.
        self.blocked.run_pending_tasks();
        if self.blocked.entry_count() == 0 {
            self.any_blocked.store(false, std::sync::atomic::Ordering::Release);
        }
    }
}

/// A request-rate limit per key, spent after the answer by whoever the request turned out to
/// be (see the module docs); `None` when turned off.
pub struct RequestLimit(Option<Throttle>);

impl RequestLimit {
    fn new(per_second: u32) -> RequestLimit {
        RequestLimit(NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
            Throttle::with_quota(Quota::per_second(rate).allow_burst(burst))
        }))
    }

    /// Seconds until `key` may send again, while it is over its rate.
    pub fn blocked(&self, key: &str) -> Option<u64> {
        self.0.as_ref()?.blocked(key)
    }

    /// Spends one request of `key`'s budget; past it the key waits only until the next request
    /// fits (a few milliseconds at high rates), not a whole second.
    pub fn spend(&self, key: &str) {
        if let Some(throttle) = &self.0 {
            throttle.count(key, Duration::ZERO);
        }
    }
}

/// Who a request authenticated as, recorded by client authentication for the throttle that
/// wraps the request (so budgets are spent by the party that actually sent it).
#[derive(Debug, Clone)]
pub(crate) struct Authenticated {
    pub client_id: String,
    /// A resource server (`introspection: true`).
    pub resource_server: bool,
}

tokio::task_local! {
    static AUTHENTICATED: Arc<OnceLock<Authenticated>>;
}

/// Runs `future` and returns what it authenticated as, if it authenticated a confidential client.
pub(crate) async fn noting_authentication<F: Future>(future: F) -> (F::Output, Option<Authenticated>) {
    let seen = Arc::new(OnceLock::new());
    let output = AUTHENTICATED.scope(seen.clone(), future).await;
    (output, seen.get().cloned())
}

/// Records that the current request authenticated `client` (a no-op outside [`noting_authentication`]).
pub(crate) fn authenticated(client_id: &str, resource_server: bool) {
    let _ = AUTHENTICATED.try_with(|seen| {
        let _ = seen.set(Authenticated { client_id: client_id.to_owned(), resource_server });
    });
}

/// Every throttle of one node.
pub struct Abuse {
    /// Failed client authentications, keyed `pair:<id> <address>` and `ip:<address>`.
    pub client_auth: Throttle,
    /// Failed client authentications per claimed client id, from every address: a last resort
    /// that never refuses a correct credential.
    pub client_id_failures: Throttle,
    /// `active: false` answers per introspecting client.
    pub scans: Throttle,
    /// Failed passwords per IP address.
    pub login_ip: Throttle,
    /// Pending authorization requests (rows written by a signed-in browser's `GET /authorize`) per
    /// address: [`PENDING_REQUESTS`] at once, then one every two seconds.
    pub pending_requests: Throttle,
    /// Registrations per address (`register:<address>`): under `registration = "open"` every
    /// attempt, under `"token"` every failure; [`REGISTRATIONS`] at once, then one a minute.
    pub registrations: Throttle,
    /// Fetches of client metadata documents per address (`cimd:<address>`), counted on a cache
    /// miss only: [`DOCUMENT_FETCHES`] at once, then one every six seconds.
    pub document_fetches: Throttle,
    /// Device codes per address (`device:<address>`): [`DEVICE_AUTHORIZATIONS`] at once, then
    /// one every three seconds.
    pub device_authorizations: Throttle,
    /// Wrong user codes at `/device`, per address and per account: [`USER_CODE_GUESSES`] at
    /// once, then one every 30 seconds.
    pub user_code_guesses: Throttle,
    /// Unknown usernames, locked like real users: (failures, locked until).
    pub unknown_users: moka::sync::Cache<String, (u64, u64)>,
    pub per_client: RequestLimit,
    pub per_ip: RequestLimit,
}

impl Abuse {
    pub fn new(per_client: u32, per_ip: u32, auth_failures: u32) -> Abuse {
        Abuse {
            client_auth: Throttle::new(auth_failures, Duration::from_secs(6)),
            client_id_failures: Throttle::new(auth_failures.saturating_mul(100), Duration::from_millis(60)),
            scans: Throttle::new(100, Duration::from_millis(100)),
            login_ip: Throttle::new(20, Duration::from_secs(30)),
            pending_requests: Throttle::new(PENDING_REQUESTS, Duration::from_secs(2)),
            registrations: Throttle::new(REGISTRATIONS, Duration::from_secs(60)),
            document_fetches: Throttle::new(DOCUMENT_FETCHES, Duration::from_secs(6)),
            device_authorizations: Throttle::new(DEVICE_AUTHORIZATIONS, Duration::from_secs(3)),
            user_code_guesses: Throttle::new(USER_CODE_GUESSES, Duration::from_secs(30)),
            unknown_users: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(LONGEST_LOCK))
                .build(),
            per_client: RequestLimit::new(per_client),
            per_ip: RequestLimit::new(per_ip),
        }
    }

    /// Drops idle keys (the janitor calls this once a minute).
    pub fn forget_old(&self) {
        self.client_auth.forget_old();
        self.client_id_failures.forget_old();
        self.scans.forget_old();
        self.login_ip.forget_old();
        self.pending_requests.forget_old();
        self.registrations.forget_old();
        self.document_fetches.forget_old();
        self.device_authorizations.forget_old();
        self.user_code_guesses.forget_old();
        for throttle in [&self.per_client.0, &self.per_ip.0].into_iter().flatten() {
            throttle.forget_old();
        }
    }
}

/// The throttle key of an address: IPv4 as is, IPv6 by its /64 (a host is usually given a
/// whole /64, so keying by address would give an attacker 2^64 fresh keys).
pub(crate) fn address_key(ip: IpAddr) -> String {
    format!("ip:{}", tessera_listener::address_key(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_double_up_to_an_hour() {
        assert_eq!((0..LOCK_AFTER).map(lock_seconds).max(), Some(0));
        assert_eq!([5, 6, 7, 12, 100].map(lock_seconds), [30, 60, 120, 3600, 3600]);
    }

    #[test]
    fn ipv6_addresses_are_keyed_by_their_64() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_eq!(key("192.0.2.7"), "ip:192.0.2.7");
    }

    #[test]
    fn the_pending_request_throttle_blocks_past_its_allowance() {
        let abuse = Abuse::new(0, 0, 10);
        for _ in 0..PENDING_REQUESTS {
            assert!(abuse.pending_requests.blocked("ip:x").is_none());
            abuse.pending_requests.failed("ip:x");
        }
        assert!(abuse.pending_requests.blocked("ip:x").is_some());
    }

    #[test]
    fn a_throttle_blocks_past_its_allowance() {
        let throttle = Throttle::new(3, Duration::from_secs(60));
        for _ in 0..2 {
            throttle.failed("k");
            assert!(throttle.blocked("k").is_none());
        }
        throttle.failed("k");
        assert!(throttle.blocked("k").is_some_and(|s| (1..=60).contains(&s)), "the third failure blocks");
        assert!(throttle.blocked("other").is_none());
    }
}
