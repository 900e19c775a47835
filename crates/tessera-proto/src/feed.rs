//! The revocation feed (`GET /revocations?after=N`, `GET /revocations/stream`): what resource
//! servers and gateways must stop accepting, in commit order. The server writes these; the
//! gateway and `tessera-verify` read them.

use serde::{Deserialize, Serialize};

/// What an event revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationKind {
    /// One token, by `jti`, until its `exp`.
    Jti,
    /// Every token whose `sub` is `value`, issued at or before `at`.
    User,
    /// Every token whose `sid` is `value`, issued at or before `at`.
    Session,
    /// Every token whose `client_id` is `value`, issued at or before `at`.
    Client,
    /// A kind newer than this reader: nothing it could match is known to it.
    #[serde(other)]
    Unknown,
}

impl RevocationKind {
    /// The kind as stored and sent (`jti`, `user`, `session`, `client`).
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Jti => "jti",
            RevocationKind::User => "user",
            RevocationKind::Session => "session",
            RevocationKind::Client => "client",
            RevocationKind::Unknown => "unknown",
        }
    }

    /// The kind of a stored value.
    pub fn parse(kind: &str) -> RevocationKind {
        match kind {
            "jti" => RevocationKind::Jti,
            "user" => RevocationKind::User,
            "session" => RevocationKind::Session,
            "client" => RevocationKind::Client,
            _ => RevocationKind::Unknown,
        }
    }
}

/// One entry of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEvent {
    /// Position in the feed; strictly increasing in commit order.
    pub seq: u64,
    pub kind: RevocationKind,
    pub value: String,
    /// When the revocation happened; for a cut-off, tokens issued at or before it are revoked.
    pub at: u64,
    /// After this instant the event no longer matters (every token it covers has expired).
    pub exp: u64,
}

/// `GET /revocations?after=N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedPage {
    pub events: Vec<RevocationEvent>,
    /// The position to ask for next time: the last event's, or `after` when there is none.
    pub last: u64,
    /// Whether more events follow right away (the page was full).
    pub more: bool,
}

/// The answer of `GET /split-tokens/{hash}`: the signed JWT's header and payload
/// (`base64url(header).base64url(payload)`), which a gateway joins with the signature the client
/// holds to rebuild the JWT of a split token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitToken {
    /// `header.payload`, without the signature.
    pub header_payload: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_and_write_as_lowercase_and_unknown_ones_are_tolerated() {
        let event: RevocationEvent =
            serde_json::from_str(r#"{"seq":1,"kind":"session","value":"s","at":2,"exp":3}"#).unwrap();
        assert_eq!(event.kind, RevocationKind::Session);
        assert!(serde_json::to_string(&event).unwrap().contains(r#""kind":"session""#));
        let newer: RevocationEvent =
            serde_json::from_str(r#"{"seq":1,"kind":"device","value":"d","at":2,"exp":3}"#).unwrap();
        assert_eq!(newer.kind, RevocationKind::Unknown);
        for kind in [RevocationKind::Jti, RevocationKind::User, RevocationKind::Session, RevocationKind::Client] {
            assert_eq!(RevocationKind::parse(kind.as_str()), kind);
        }
    }
}
