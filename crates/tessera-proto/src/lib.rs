//! Wire types of the Tessera access-token platform: what crosses HTTP between clients,
//! the authorization server, gateways and the CLI, and [`SecretString`], the one type every
//! component holds its secrets in. Serde only, no I/O.

pub mod admin;
pub mod bff;
pub mod discovery;
pub mod error;
pub mod feed;
pub mod jwks;
pub mod registration;
mod secret;
pub mod token;

pub use secret::SecretString;

/// Seconds since the Unix epoch. Every API that depends on the time takes one explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// The number of seconds since the Unix epoch.
    pub fn secs(self) -> u64 {
        self.0
    }

    /// This instant moved `secs` seconds into the future, saturating.
    pub fn plus(self, secs: u64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }
}
