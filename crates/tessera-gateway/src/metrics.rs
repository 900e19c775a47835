//! The gateway's Prometheus metrics (`GET /metrics`, text exposition format), recorded with the
//! `metrics` facade into `metrics-exporter-prometheus`:
//!
//! - `tessera_gateway_requests_total{route, status, source}` and
//!   `tessera_gateway_request_duration_seconds{route}` (histogram): every request, by route
//!   prefix (`bff` for the token handler's endpoints, `static`, `none` when no route matched);
//!   `source` says who caused a failure: for an answer the gateway gave itself, its
//!   [`crate::ErrorSource`] (`client`, `upstream`, `issuer`, `gateway`); for an upstream's own
//!   5xx, `upstream`; otherwise `none`;
//! - `tessera_gateway_errors_total{route, source}`: the answers the gateway gave in place of the
//!   upstream's, by who caused them (`client`, `upstream`, `issuer`, `gateway`; see `error.rs`);
//! - `tessera_gateway_exchanges_total{mode, outcome}`: phantom/split lookups (`hit`, `miss`,
//!   `refused`, `unavailable`);
//! - `tessera_gateway_bff_total{event, outcome}`: token-handler logins, refreshes, logouts;
//! - `tessera_gateway_revocation_feed_position{audience}` and
//!   `tessera_gateway_revocation_feed_current{audience}`: the last revocation event applied, and
//!   whether the feed is current (0 means requests are being refused with 503).
//!
//! The recorder is process-wide; when the host process installed another one first, the
//! gateway records into that and `/metrics` answers 404.

use std::time::Duration;

/// The process's Prometheus recorder (installed once, shared with the other binary's code).
pub(crate) fn handle() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    tessera_listener::prometheus()
}

/// One request through the gateway; `source` is who caused the answer when the gateway gave it.
pub(crate) fn request(route: &str, status: u16, source: Option<crate::ErrorSource>, elapsed: Duration) {
    let route = route.to_owned();
    let source = match source {
        Some(source) => source.as_str(),
        None if status >= 500 => "upstream",
        None => "none",
    };
    metrics::counter!(
        "tessera_gateway_requests_total",
        "route" => route.clone(),
        "status" => status.to_string(),
        "source" => source
    )
    .increment(1);
    metrics::histogram!("tessera_gateway_request_duration_seconds", "route" => route).record(elapsed.as_secs_f64());
}

/// One error answer the gateway gave, by who caused it.
pub(crate) fn error(route: &str, source: crate::ErrorSource) {
    metrics::counter!("tessera_gateway_errors_total", "route" => route.to_owned(), "source" => source.as_str())
        .increment(1);
}

/// One phantom or split lookup.
pub(crate) fn exchange(mode: &'static str, outcome: &'static str) {
    metrics::counter!("tessera_gateway_exchanges_total", "mode" => mode, "outcome" => outcome).increment(1);
}

/// One token-handler event.
pub(crate) fn bff(event: &'static str, outcome: &'static str) {
    metrics::counter!("tessera_gateway_bff_total", "event" => event, "outcome" => outcome).increment(1);
}

/// The revocation feed of one audience's verifier, sampled at scrape time.
pub(crate) fn feed(audience: &str, position: Option<u64>, current: bool) {
    let audience = audience.to_owned();
    if let Some(position) = position {
        #[allow(clippy::cast_precision_loss)] // event numbers stay far below 2^53
        metrics::gauge!("tessera_gateway_revocation_feed_position", "audience" => audience.clone())
            .set(position as f64);
    }
    metrics::gauge!("tessera_gateway_revocation_feed_current", "audience" => audience).set(if current {
        1.0
    } else {
        0.0
    });
}
