//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document): a `client_id`
//! that is an https URL names the JSON document describing the client. This module knows which
//! client ids are such URLs, fetches documents through [`crate::outbound`] (no redirects, no
//! special-purpose addresses, [`MAX_DOCUMENT_BYTES`], a 5 s timeout) and remembers, per node,
//! until when a stored copy is current and which URLs failed a moment ago. What a document may
//! say, and storing it as a client, is `flows::metadata_document`'s.

use std::sync::Arc;
use std::time::Duration;

use tessera_proto::registration::RegistrationRequest;

use crate::outbound::{Outbound, Reach};

/// The largest document accepted (the draft's recommendation).
pub(crate) const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// The shortest time a fetched document is used for, whatever its `Cache-Control` says.
pub(crate) const MIN_TTL: u64 = 300;
/// The longest time a fetched document is used for before it is fetched again.
pub(crate) const MAX_TTL: u64 = 86_400;
/// How long a failed fetch is remembered: meanwhile the URL is refused without fetching.
pub(crate) const FAILURE_TTL: u64 = 60;
/// The longest client id URL accepted.
const MAX_URL_BYTES: usize = 2048;

/// Fetched documents' freshness and recent failures, per node.
pub(crate) struct MetadataDocuments {
    outbound: Outbound,
    allow_loopback: bool,
    /// URL → until when the stored client is current.
    fresh: moka::sync::Cache<String, u64>,
    /// URL → (when it failed, why).
    failed: moka::sync::Cache<String, (u64, Arc<str>)>,
}

/// Whether a `client_id` names a metadata document, and if so whether the URL is acceptable.
pub(crate) enum ClientIdUrl {
    /// An ordinary client id.
    NotAUrl,
    /// A valid client id URL.
    Valid(url::Url),
    /// An https URL that a client id may not be; why.
    Invalid(&'static str),
}

impl MetadataDocuments {
    /// `allow_loopback` (`cimd_allow_loopback`, insecure) also accepts `http` URLs and loopback
    /// addresses, for development and tests.
    pub(crate) fn new(allow_loopback: bool) -> MetadataDocuments {
        let reach = if allow_loopback { Reach::PublicAndLoopback } else { Reach::Public };
        MetadataDocuments {
            outbound: Outbound::new(reach, Duration::from_secs(5)),
            allow_loopback,
            fresh: moka::sync::Cache::new(100_000),
            failed: moka::sync::Cache::new(100_000),
        }
    }

    /// Sorts a client id (draft §3): https (or, with `allow_loopback`, http on a loopback
    /// address), a path, no `.` or `..` segments, no fragment, no user or password, in the
    /// URL's normal form (so one document has one client id).
    pub(crate) fn classify(&self, client_id: &str) -> ClientIdUrl {
        let scheme_ok = client_id.starts_with("https://") || (self.allow_loopback && client_id.starts_with("http://"));
        if !scheme_ok {
            return ClientIdUrl::NotAUrl;
        }
        if client_id.len() > MAX_URL_BYTES {
            return ClientIdUrl::Invalid("the client_id URL is too long");
        }
        let Ok(url) = url::Url::parse(client_id) else { return ClientIdUrl::Invalid("the client_id is not a URL") };
        if url.scheme() == "http" && !is_loopback(&url) {
            return ClientIdUrl::Invalid("a client_id URL uses https");
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return ClientIdUrl::Invalid("a client_id URL has no fragment, user or password");
        }
        let raw_path = client_id.splitn(4, '/').nth(3).unwrap_or("");
        let dot_segment = raw_path
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .split('/')
            .any(|s| matches!(s.to_ascii_lowercase().as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."));
        if dot_segment {
            return ClientIdUrl::Invalid("a client_id URL has no . or .. path segments");
        }
        if url.path() == "/" || url.path().is_empty() {
            return ClientIdUrl::Invalid("a client_id URL has a path");
        }
        if url.as_str() != client_id {
            return ClientIdUrl::Invalid("the client_id URL is not in its normal form");
        }
        ClientIdUrl::Valid(url)
    }

    /// Whether the stored client of `url` is current at `now`.
    pub(crate) fn is_fresh(&self, url: &str, now: u64) -> bool {
        self.fresh.get(url).is_some_and(|until| now < until)
    }

    /// Why `url` failed, if it did less than [`FAILURE_TTL`] ago.
    pub(crate) fn recent_failure(&self, url: &str, now: u64) -> Option<Arc<str>> {
        self.failed.get(url).filter(|(at, _)| now.saturating_sub(*at) < FAILURE_TTL).map(|(_, why)| why)
    }

    pub(crate) fn remember_failure(&self, url: &str, now: u64, why: &str) {
        self.fresh.invalidate(url);
        self.failed.insert(url.to_owned(), (now, Arc::from(why)));
    }

    pub(crate) fn remember_fresh(&self, url: &str, until: u64) {
        self.failed.invalidate(url);
        self.fresh.insert(url.to_owned(), until);
    }

    /// Fetches and parses the document at `url`: its metadata and for how many seconds it may
    /// be used (its `Cache-Control: max-age`, within [`MIN_TTL`]…[`MAX_TTL`]).
    pub(crate) async fn fetch(&self, url: &url::Url) -> anyhow::Result<(RegistrationRequest, u64)> {
        let fetched = self.outbound.get(url, "application/json", MAX_DOCUMENT_BYTES).await?;
        let document: RegistrationRequest = serde_json::from_slice(&fetched.body)
            .map_err(|err| anyhow::anyhow!("the document is not a JSON client metadata object ({err})"))?;
        Ok((document, ttl(fetched.cache_control.as_deref())))
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain == "localhost",
        None => false,
    }
}

/// Seconds a document may be used for, from its `Cache-Control`: `max-age` within bounds;
/// `no-store`, `no-cache`, or no header at all mean the shortest time.
fn ttl(cache_control: Option<&str>) -> u64 {
    let Some(cache_control) = cache_control else { return MIN_TTL };
    let mut max_age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return MIN_TTL;
        }
        if let Some(value) = lower.strip_prefix("max-age=") {
            max_age = value.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age.unwrap_or(MIN_TTL).clamp(MIN_TTL, MAX_TTL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_urls_are_https_with_a_path_in_normal_form() {
        let documents = MetadataDocuments::new(false);
        for valid in
            ["https://app.example/client.json", "https://app.example:8443/oauth/client", "https://app.example/c?v=1"]
        {
            assert!(matches!(documents.classify(valid), ClientIdUrl::Valid(_)), "{valid}");
        }
        for ordinary in ["s6BhdRkqt3", "http://app.example/client.json", "urn:x:y"] {
            assert!(matches!(documents.classify(ordinary), ClientIdUrl::NotAUrl), "{ordinary}");
        }
        for invalid in [
            "https://app.example",
            "https://app.example/",
            "https://app.example/a/../client.json",
            "https://app.example/a/./client.json",
            "https://app.example/a/%2e%2E/client.json",
            "https://app.example/client.json#x",
            "https://user@app.example/client.json",
            "https://user:pw@app.example/client.json",
            "https://APP.example/client.json",
            "https://app.example:443/client.json",
            "https://app.example/client json",
        ] {
            assert!(matches!(documents.classify(invalid), ClientIdUrl::Invalid(_)), "{invalid}");
        }
        let long = format!("https://app.example/{}", "a".repeat(MAX_URL_BYTES));
        assert!(matches!(documents.classify(&long), ClientIdUrl::Invalid(_)));
    }

    #[test]
    fn loopback_http_only_when_allowed() {
        let documents = MetadataDocuments::new(true);
        assert!(matches!(documents.classify("http://127.0.0.1:8000/client.json"), ClientIdUrl::Valid(_)));
        assert!(matches!(documents.classify("http://app.example/client.json"), ClientIdUrl::Invalid(_)));
        let strict = MetadataDocuments::new(false);
        assert!(matches!(strict.classify("http://127.0.0.1:8000/client.json"), ClientIdUrl::NotAUrl));
    }

    #[test]
    fn cache_control_is_honoured_within_bounds() {
        assert_eq!(ttl(None), MIN_TTL);
        assert_eq!(ttl(Some("max-age=3600")), 3600);
        assert_eq!(ttl(Some("public, max-age=60")), MIN_TTL);
        assert_eq!(ttl(Some("max-age=999999")), MAX_TTL);
        assert_eq!(ttl(Some("no-store")), MIN_TTL);
        assert_eq!(ttl(Some("max-age=3600, no-cache")), MIN_TTL);
        assert_eq!(ttl(Some("max-age=junk")), MIN_TTL);
    }

    #[test]
    fn freshness_and_failures_expire() {
        let documents = MetadataDocuments::new(false);
        let url = "https://app.example/client.json";
        assert!(!documents.is_fresh(url, 100));
        documents.remember_fresh(url, 400);
        assert!(documents.is_fresh(url, 399));
        assert!(!documents.is_fresh(url, 400));
        documents.remember_failure(url, 1000, "broken");
        assert!(!documents.is_fresh(url, 100));
        assert_eq!(documents.recent_failure(url, 1000 + FAILURE_TTL - 1).as_deref(), Some("broken"));
        assert!(documents.recent_failure(url, 1000 + FAILURE_TTL).is_none());
    }
}
