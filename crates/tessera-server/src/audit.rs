//! The audit log's records: what happened (an [`Event`]), who did it, to whom, from where,
//! and how it ended — never a secret — and the hash chain that makes the log tamper-evident.
//!
//! Every record carries `hash = SHA-256(previous hash ‖ canonical JSON of its fields)`, the
//! first record's previous hash being 32 zero bytes, and records are numbered 1, 2, 3, … with
//! no gaps. So a modified record fails its own hash, a removed one leaves a gap (or, renumbered,
//! fails its hash), and two exchanged records fail at the first of them: [`Verifier`] reports
//! the first position where the chain breaks. A cut-off tail is caught against the chain's head
//! (`audit_head`), and against an anchor the operator kept (`tessera audit head`), which an
//! attacker who rewrites the head too cannot forge.
//!
//! Records are written by the store in the same transaction as the change they describe
//! (`store::audit`); events that change nothing else (a failed sign-in, a refused client, an
//! introspected inactive token, a stateless JWT) are grouped into one transaction per round, or
//! on SQLite appended to an outbox file and moved into the log in batches (`store::outbox`).
//! The request's address and id come from a task-local [`Context`] set for every request.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// An access token was issued (any grant, any format).
    TokenIssued,
    /// A refresh token was used and (if the client rotates) replaced.
    TokenRefreshed,
    /// A used refresh token or authorization code came back: its grant was revoked.
    ReuseDetected,
    /// Tokens were revoked: one token, a grant, a session, a user's or a client's.
    TokenRevoked,
    /// A resource server introspected a token that is not active.
    IntrospectionInactive,
    /// A client failed to authenticate at `/token`, `/introspect`, `/revoke` or `/par`.
    ClientAuthFailed,
    /// A user signed in.
    Login,
    /// A user's password (or username) was refused.
    LoginFailed,
    /// A user was locked out after repeated failures.
    Lockout,
    /// A user signed out (their session ended).
    Logout,
    /// A user granted a client scopes.
    ConsentGranted,
    /// A signing key was created.
    KeyCreated,
    /// A signing key became the active one.
    KeyActivated,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// An administrator (admin API or CLI) changed a client, a user or a setting.
    AdminChange,
    /// A client registered itself (RFC 7591), or was refused.
    ClientRegistered,
    /// A self-registered client read, replaced or deleted its registration (RFC 7592).
    ClientRegistrationManaged,
    /// The janitor deleted a self-registered client that was never used.
    ClientRegistrationExpired,
    /// A device asked for a device code (RFC 8628 §3.1).
    DeviceCodeIssued,
    /// A person approved or denied a device's request at `/device`.
    DeviceCodeDecided,
}

impl Event {
    /// Every event, for documentation and filters.
    pub const ALL: [Event; 21] = [
        Event::TokenIssued,
        Event::TokenRefreshed,
        Event::ReuseDetected,
        Event::TokenRevoked,
        Event::IntrospectionInactive,
        Event::ClientAuthFailed,
        Event::Login,
        Event::LoginFailed,
        Event::Lockout,
        Event::Logout,
        Event::ConsentGranted,
        Event::KeyCreated,
        Event::KeyActivated,
        Event::ApiKeyCreated,
        Event::ApiKeyRevoked,
        Event::AdminChange,
        Event::ClientRegistered,
        Event::ClientRegistrationManaged,
        Event::ClientRegistrationExpired,
        Event::DeviceCodeIssued,
        Event::DeviceCodeDecided,
    ];

    /// The name stored and shown (`token.issued`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::TokenIssued => "token.issued",
            Event::TokenRefreshed => "token.refreshed",
            Event::ReuseDetected => "token.reuse_detected",
            Event::TokenRevoked => "token.revoked",
            Event::IntrospectionInactive => "introspection.inactive",
            Event::ClientAuthFailed => "client.auth_failed",
            Event::Login => "user.login",
            Event::LoginFailed => "user.login_failed",
            Event::Lockout => "user.locked_out",
            Event::Logout => "user.logout",
            Event::ConsentGranted => "consent.granted",
            Event::KeyCreated => "key.created",
            Event::KeyActivated => "key.activated",
            Event::ApiKeyCreated => "api_key.created",
            Event::ApiKeyRevoked => "api_key.revoked",
            Event::AdminChange => "admin.change",
            Event::ClientRegistered => "client.registered",
            Event::ClientRegistrationManaged => "client.registration_managed",
            Event::ClientRegistrationExpired => "client.registration_expired",
            Event::DeviceCodeIssued => "device.code_issued",
            Event::DeviceCodeDecided => "device.decided",
        }
    }

    pub fn parse(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Refused: bad credentials, a replay, a lockout.
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// Where a request came from; set around every request (`http::audit_context`).
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// Who is acting, when the request authenticated someone for the whole route (the admin
    /// API: `admin:<client id>`).
    pub actor: Option<String>,
}

tokio::task_local! {
    static CONTEXT: Context;
}

/// Runs `future` with `context` as the request context of the records it makes.
pub async fn in_context<F: std::future::Future>(context: Context, future: F) -> F::Output {
    CONTEXT.scope(context, future).await
}

/// The current request context (empty outside a request).
pub fn context() -> Context {
    CONTEXT.try_with(Context::clone).unwrap_or_default()
}

/// One record, before the store numbers and chains it (serialized only into the SQLite
/// backend's outbox, `store/outbox.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub at: u64,
    pub event: Cow<'static, str>,
    pub outcome: Cow<'static, str>,
    /// Who acted: `client:<id>`, `user:<id>`, `admin:<client id>`, `cli`, `server`, or
    /// `anonymous`.
    pub actor: String,
    /// Whom it concerns: a user id, or `api_key:<id>`, `key:<kid>`.
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// Further facts (`jti`, `grant_type`, counts, …), never a secret: the text of a JSON object,
    /// its members in the order they were added ([`Record::detail`]). Kept as text because it is
    /// stored and hashed as text; building a map first cost more than the rest of the record.
    #[serde(with = "details_text")]
    details: Details,
}

/// A record's details: the text of a JSON object, and the same text escaped as the contents of a
/// JSON string, which is how the record's encoding holds it ([`Record::encode`]). Built together,
/// member by member: escaping the whole text when the record is encoded meant a separate write for
/// each of its quotes, the largest cost of serializing a record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Details {
    text: String,
    escaped: Vec<u8>,
}

impl Details {
    fn from_text(text: String) -> Details {
        let mut escaped = Vec::with_capacity(text.len() + text.len() / 4);
        escape_json_text(&text, &mut escaped);
        Details { text, escaped }
    }
}

/// Whether serde_json escapes anything in `bytes` when it writes them as a JSON string (a control
/// character, `"` or `\`). Without an early exit, so that the compiler checks many bytes at once:
/// nearly every string of a record is plain, and serde_json looks at one byte at a time.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |found, &b| found | (b < 0x20) | (b == b'"') | (b == b'\\'))
}

/// Appends `text` as a JSON string, exactly as serde_json writes it.
fn write_json_str(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// Appends `text` as the contents of a JSON string, exactly as serde_json writes it. The text of
/// details is serde_json's output, which has no control character (it escapes them), so only `"`
/// and `\` get a backslash here; text with a control character is escaped by serde_json itself.
fn escape_json_text(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    if bytes.iter().any(|&b| b < 0x20) {
        let quoted = serde_json::to_vec(text).unwrap_or_default();
        out.extend_from_slice(quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default());
        return;
    }
    // A JSON string with nothing to escape inside (a member's key, most values): its two quotes.
    if let [b'"', inner @ .., b'"'] = bytes
        && !needs_escape(inner)
    {
        out.extend_from_slice(br#"\""#);
        out.extend_from_slice(inner);
        out.extend_from_slice(br#"\""#);
        return;
    }
    for &b in bytes {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// A record's details in the outbox: a JSON string (older outboxes held the object itself).
mod details_text {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(details: &super::Details, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&details.text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<super::Details, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Details {
            Text(String),
            Object(serde_json::Map<String, serde_json::Value>),
        }
        Ok(super::Details::from_text(match Details::deserialize(deserializer)? {
            Details::Text(text) => text,
            Details::Object(map) => serde_json::Value::Object(map).to_string(),
        }))
    }
}

impl Record {
    /// A record of `event` at `now` by `actor`, with the current request's address and id.
    pub fn new(event: Event, now: u64, actor: impl Into<String>) -> Record {
        let context = context();
        Record {
            at: now,
            event: Cow::Borrowed(event.as_str()),
            outcome: Cow::Borrowed(Outcome::Success.as_str()),
            actor: actor.into(),
            subject: None,
            client_id: None,
            session_id: None,
            ip: context.ip,
            request_id: context.request_id,
            // Room for a token's details, so that adding them does not reallocate.
            details: {
                let (mut text, mut escaped) = (String::with_capacity(256), Vec::with_capacity(320));
                text.push_str("{}");
                escaped.extend_from_slice(b"{}");
                Details { text, escaped }
            },
        }
    }

    /// A record of `event` by whoever the request context names (the admin API's caller), else
    /// by `fallback` (`server` at start-up, …).
    pub fn by_context(event: Event, now: u64, fallback: &str) -> Record {
        let actor = context().actor.unwrap_or_else(|| fallback.to_owned());
        Record::new(event, now, actor)
    }

    /// An administrator's change: `action` (`client.create`, …), by the admin API's caller
    /// (`server` for the bootstrap admin client made at the first start).
    pub fn admin(now: u64, action: &str) -> Record {
        Record::by_context(Event::AdminChange, now, "server").detail("action", action)
    }

    pub fn failed(mut self) -> Record {
        self.outcome = Cow::Borrowed(Outcome::Failure.as_str());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Record {
        self.subject = Some(subject.into());
        self
    }

    pub fn client(mut self, client_id: impl Into<String>) -> Record {
        self.client_id = Some(client_id.into());
        self
    }

    pub fn session(mut self, session_id: Option<impl Into<String>>) -> Record {
        self.session_id = session_id.map(Into::into);
        self
    }

    /// Adds `key: value` to the details (each key once).
    pub fn detail(mut self, key: &str, value: impl Serialize) -> Record {
        let Details { text, escaped } = &mut self.details;
        debug_assert!(!text.contains(&format!("{:?}:", key)), "detail {key} added twice");
        // Both end with the object's closing brace.
        text.pop();
        escaped.pop();
        if text.len() > 1 {
            text.push(',');
            escaped.push(b',');
        }
        // The member is written by serde_json at the end of `escaped` (bytes: no check per write),
        // copied into `text`, and escaped in its place. Strings and numbers always serialize; a
        // value that does not is stored as null. serde_json writes UTF-8.
        let mark = escaped.len();
        write_json_str(escaped, key);
        let value_mark = escaped.len();
        if serde_json::to_writer(&mut *escaped, &value).is_err() {
            escaped.truncate(value_mark);
            escaped.extend_from_slice(b"null");
        }
        let text_mark = text.len();
        let Ok(member) = std::str::from_utf8(&escaped[mark..]) else {
            // serde_json writes UTF-8: not reached. The member is left out rather than mangled.
            escaped.truncate(mark);
            if text.ends_with(',') {
                text.pop();
                escaped.pop();
            }
            text.push('}');
            escaped.push(b'}');
            return self;
        };
        let (key_json, value_json) = member.split_at(value_mark - mark);
        text.push_str(key_json);
        text.push(':');
        text.push_str(value_json);
        escaped.truncate(mark);
        // The key and the value apart: each is usually a string with nothing to escape inside.
        let key_end = text_mark + (value_mark - mark);
        escape_json_text(&text[text_mark..key_end], escaped);
        escaped.push(b':');
        escape_json_text(&text[key_end + 1..], escaped);
        text.push('}');
        escaped.push(b'}');
        self
    }

    /// The details: the text of a JSON object.
    pub fn details(&self) -> &str {
        &self.details.text
    }

    /// The fields as stored and hashed.
    pub fn stored(&self) -> Stored<'_> {
        Stored {
            at: self.at,
            event: &self.event,
            outcome: &self.outcome,
            actor: &self.actor,
            subject: self.subject.as_deref(),
            client_id: self.client_id.as_deref(),
            session_id: self.session_id.as_deref(),
            ip: self.ip.as_deref(),
            request_id: self.request_id.as_deref(),
            details: &self.details.text,
        }
    }
}

pub use tessera_proto::admin::{AuditBreak as Break, AuditEntry as Entry, AuditVerification as Verification};

/// A record's fields as stored; its hash covers them, in this order, after the previous hash.
#[derive(Debug)]
pub struct Stored<'a> {
    pub at: u64,
    pub event: &'a str,
    pub outcome: &'a str,
    pub actor: &'a str,
    pub subject: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub details: &'a str,
}

/// The one encoder of a record's fields. What a record's hash covers after the previous hash is
/// the JSON object it writes with `seq` (`{"seq":N,"at":…,"event":…}`, members in this order, each
/// written as serde_json writes it: the log's format; changing it breaks every stored chain); what
/// the outbox stores is the same object without `seq` ([`Record::encode`]), so that chaining a
/// stored record only puts `"seq":N,` after its brace ([`write_hashed`]). `escaped_details` is the
/// details' text already escaped, when the caller keeps it so.
fn write_fields(out: &mut Vec<u8>, seq: Option<u64>, fields: &Stored<'_>, escaped_details: Option<&[u8]>) {
    use std::io::Write as _;
    // Writing strings and integers into a Vec cannot fail.
    let text = write_json_str;
    out.reserve(192 + fields.actor.len() + fields.details.len());
    match seq {
        Some(seq) => {
            let _ = write!(out, "{{\"seq\":{seq},\"at\":{}", fields.at);
        }
        None => {
            let _ = write!(out, "{{\"at\":{}", fields.at);
        }
    }
    out.extend_from_slice(b",\"event\":");
    text(out, fields.event);
    out.extend_from_slice(b",\"outcome\":");
    text(out, fields.outcome);
    out.extend_from_slice(b",\"actor\":");
    text(out, fields.actor);
    let optional = [
        (&b",\"subject\":"[..], fields.subject),
        (b",\"client_id\":", fields.client_id),
        (b",\"session_id\":", fields.session_id),
        (b",\"ip\":", fields.ip),
        (b",\"request_id\":", fields.request_id),
    ];
    for (name, value) in optional {
        out.extend_from_slice(name);
        match value {
            Some(value) => text(out, value),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"details\":");
    match escaped_details {
        Some(escaped) => {
            out.push(b'"');
            out.extend_from_slice(escaped);
            out.push(b'"');
        }
        None => text(out, fields.details),
    }
    out.push(b'}');
}

/// The chain hash of record `seq` with these fields after `prev`.
pub fn chain_hash(prev: &[u8; 32], seq: u64, fields: &Stored<'_>) -> [u8; 32] {
    let mut object = Vec::new();
    write_fields(&mut object, Some(seq), fields, None);
    chain_hash_of(prev, &object)
}

impl Record {
    /// Appends the record's encoding, what the outbox stores: the object [`chain_hash`] covers
    /// without `seq` ([`write_fields`]), with the details already escaped. Byte for byte what
    /// serializing the record writes (the tests compare them).
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_fields(out, None, &self.stored(), Some(&self.details.escaped));
    }
}

/// Appends the object [`chain_hash`] covers for record `seq`, given the record's encoding
/// ([`Record::encode`]): the encoding with `seq` as its first member.
pub fn write_hashed(seq: u64, encoded: &[u8], out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{{\"seq\":{seq}");
    if encoded.len() > 2 {
        out.push(b',');
    }
    // An encoding is an object, never empty: its `{` is the one written above.
    out.extend_from_slice(encoded.get(1..).unwrap_or_default());
}

/// The chain hash of a record after `prev`, given the object it covers ([`write_hashed`]).
pub fn chain_hash_of(prev: &[u8; 32], hashed: &[u8]) -> [u8; 32] {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(prev);
    context.update(hashed);
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// The stored fields of an entry read back.
fn stored_of(entry: &Entry) -> Stored<'_> {
    Stored {
        at: entry.at,
        event: &entry.event,
        outcome: &entry.outcome,
        actor: &entry.actor,
        subject: entry.subject.as_deref(),
        client_id: entry.client_id.as_deref(),
        session_id: entry.session_id.as_deref(),
        ip: entry.ip.as_deref(),
        request_id: entry.request_id.as_deref(),
        details: &entry.details,
    }
}

/// Checks entries in `seq` order, one page at a time; stops at the first break.
#[derive(Debug)]
pub struct Verifier {
    prev: [u8; 32],
    next_seq: u64,
    anchor: Option<(u64, String)>,
    broken: Option<Break>,
}

impl Verifier {
    /// A verifier from the start of the log; `anchor` is a position and hash (hex) the
    /// operator kept from an earlier `tessera audit head`, which the log must still contain.
    pub fn new(anchor: Option<(u64, String)>) -> Verifier {
        Verifier { prev: [0; 32], next_seq: 1, anchor, broken: None }
    }

    /// Feeds the next entries (ascending `seq`); `false` once the chain is broken.
    pub fn feed(&mut self, entries: &[Entry]) -> bool {
        for entry in entries {
            if self.broken.is_some() {
                return false;
            }
            if entry.seq != self.next_seq {
                let reason = if entry.seq > self.next_seq {
                    format!("record {} is missing (the next one is {})", self.next_seq, entry.seq)
                } else {
                    format!("record {} appears again", entry.seq)
                };
                self.broken = Some(Break { seq: self.next_seq, reason });
                return false;
            }
            let expected = chain_hash(&self.prev, entry.seq, &stored_of(entry));
            let expected_hex = hex(&expected);
            if expected_hex != entry.hash {
                self.broken = Some(Break {
                    seq: entry.seq,
                    reason: format!(
                        "record {} does not match its hash: it was changed, moved, or one before it was",
                        entry.seq
                    ),
                });
                return false;
            }
            if let Some((seq, hash)) = &self.anchor
                && *seq == entry.seq
                && !hash.eq_ignore_ascii_case(&expected_hex)
            {
                self.broken = Some(Break {
                    seq: entry.seq,
                    reason: format!("record {} does not match the anchor: the log was rewritten up to here", entry.seq),
                });
                return false;
            }
            self.prev = expected;
            self.next_seq += 1;
        }
        self.broken.is_none()
    }

    /// The result, given the stored head (`audit_head`: the last position every writer agreed
    /// on, and its hash in hex).
    pub fn finish(mut self, head: (u64, String)) -> Verification {
        let last = self.next_seq - 1;
        if self.broken.is_none() {
            let (head_seq, head_hash) = head;
            if head_seq != last || (last > 0 && head_hash != hex(&self.prev)) {
                self.broken = Some(Break {
                    seq: last + 1,
                    reason: format!(
                        "the log ends at record {last} but its head says {head_seq}: records were removed from the end"
                    ),
                });
            } else if let Some((seq, _)) = &self.anchor
                && *seq > last
            {
                self.broken = Some(Break {
                    seq: last + 1,
                    reason: format!("the anchor names record {seq} but the log ends at {last}"),
                });
            }
        }
        Verification { verified: last, head_seq: last, head_hash: hex(&self.prev), first_break: self.broken }
    }
}

/// Parses an anchor `SEQ:HASH` (64 hex digits).
pub fn parse_anchor(text: &str) -> Option<(u64, String)> {
    let (seq, hash) = text.split_once(':')?;
    let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    Some((seq.parse().ok()?, hash.to_ascii_lowercase())).filter(|_| valid)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash of a known record, computed outside Rust (Python's `hashlib.sha256` over 32 zero
    /// bytes and the compact JSON object): a change to the hashed format breaks this, as it would
    /// break every stored chain.
    #[test]
    fn chain_hash_format_is_pinned() {
        let mut record = Record::new(Event::TokenIssued, 1_700_000_000, "client:c1").subject("u1").client("c1");
        record.ip = Some("127.0.0.1".to_owned());
        record.request_id = Some("r-1".to_owned());
        let record = record.detail("jti", "abc").detail("n", 3);
        assert_eq!(record.details(), r#"{"jti":"abc","n":3}"#);
        assert_eq!(
            hex(&chain_hash(&[0; 32], 7, &record.stored())),
            "3d6b95b620b066b2d8e1f935a4813c3aa1acefbcd0de9a36d25354e27d648085"
        );
    }

    /// A record with every field set, made of `text` (any string: quotes, escapes, controls,
    /// non-ASCII).
    fn full_record(text: &str, at: u64) -> Record {
        let mut record = Record::new(Event::ApiKeyRevoked, at, text).subject(text).client(text).session(Some(text));
        record.ip = Some(text.to_owned());
        record.request_id = Some(text.to_owned());
        record.detail("k", text).detail(&format!("x{text}"), at).detail("none", None::<u8>)
    }

    fn hash_from_encoding(prev: &[u8; 32], seq: u64, record: &Record) -> [u8; 32] {
        let (mut encoded, mut hashed) = (Vec::new(), Vec::new());
        record.encode(&mut encoded);
        // The encoding written by hand is what serde writes for the record.
        assert_eq!(String::from_utf8_lossy(&encoded), serde_json::to_string(record).unwrap());
        write_hashed(seq, &encoded, &mut hashed);
        // The object covered is the JSON that `chain_hash` serializes, byte for byte.
        let fields: serde_json::Value = serde_json::from_slice(&hashed).unwrap();
        assert_eq!(fields["seq"], seq);
        chain_hash_of(prev, &hashed)
    }

    /// The outbox's encoding, chained, gives exactly the hash of the fields as stored (which is
    /// what `tessera audit verify` recomputes).
    #[test]
    fn the_hash_of_an_encoding_is_the_hash_of_its_fields() {
        let prev = [7u8; 32];
        for text in ["", "plain", "quote \" backslash \\ slash /", "\u{0}\u{1f}\n\t\r", "ünï €😀", "\u{2028}\u{7f}"]
        {
            for (seq, at) in [(1, 0), (9, 1_700_000_000), (u64::MAX, u64::MAX)] {
                let record = full_record(text, at);
                assert_eq!(
                    hash_from_encoding(&prev, seq, &record),
                    chain_hash(&prev, seq, &record.stored()),
                    "{text:?}"
                );
            }
        }
        // Fields left empty (null) too.
        let bare = Record::new(Event::Login, 5, "anonymous");
        assert_eq!(hash_from_encoding(&prev, 3, &bare), chain_hash(&prev, 3, &bare.stored()));
        // And the pinned record's hash.
        let mut record = Record::new(Event::TokenIssued, 1_700_000_000, "client:c1").subject("u1").client("c1");
        record.ip = Some("127.0.0.1".to_owned());
        record.request_id = Some("r-1".to_owned());
        let record = record.detail("jti", "abc").detail("n", 3);
        assert_eq!(
            hex(&hash_from_encoding(&[0; 32], 7, &record)),
            "3d6b95b620b066b2d8e1f935a4813c3aa1acefbcd0de9a36d25354e27d648085"
        );
    }

    proptest::proptest! {
        #[test]
        fn encodings_hash_as_their_fields(text in "\\PC*|[\\x00-\\x7f]*", seq: u64, at: u64) {
            let record = full_record(&text, at);
            let from_fields = chain_hash(&[1; 32], seq, &record.stored());
            proptest::prop_assert_eq!(hash_from_encoding(&[1; 32], seq, &record), from_fields);
            // Details are valid JSON whatever the values.
            let details: serde_json::Value = serde_json::from_str(record.details()).unwrap();
            proptest::prop_assert_eq!(&details["k"], &serde_json::Value::String(text.clone()));
        }
    }

    /// An outbox written before details were kept as text holds them as an object.
    #[test]
    fn outbox_records_with_object_details_still_read() {
        let record = Record::new(Event::TokenIssued, 1, "server").detail("jti", "x");
        let text = serde_json::to_string(&record).unwrap();
        assert!(text.contains(r#""details":"{\"jti\":\"x\"}""#), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), record);
        let old = text.replace(r#""details":"{\"jti\":\"x\"}""#, r#""details":{"jti":"x"}"#);
        assert_eq!(serde_json::from_str::<Record>(&old).unwrap(), record);
    }
}
