//! Prometheus metrics of the server (`GET /metrics`: on the admin listener, and on the public
//! listener for loopback peers whose request did not come through a proxy), recorded with the
//! `metrics` facade into `metrics-exporter-prometheus`:
//!
//! - `tessera_http_requests_total{listener, endpoint, status}` and
//!   `tessera_http_request_duration_seconds{listener, endpoint}`: every request, by route pattern;
//! - `tessera_tokens_issued_total{grant, format}`;
//! - `tessera_revocations_total{kind}` and `tessera_refresh_reuse_detected_total`;
//! - `tessera_cache_total{cache, outcome}` (`hit`, `miss`) for the active-token cache;
//! - `tessera_db_pool_connections{state}` and `tessera_revocation_feed_head`, sampled at scrape
//!   time (compare the feed head with gateways' `tessera_gateway_revocation_feed_position`).
//!
//! The recorder is process-wide; when a host process installed another one first, this one
//! records into that and `/metrics` answers 404.

use std::time::Duration;

/// The process's Prometheus recorder (installed once, shared with the other binary's code).
pub(crate) fn handle() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    tessera_listener::prometheus()
}

pub(crate) fn http_request(listener: &'static str, endpoint: &str, status: u16, elapsed: Duration) {
    let endpoint = endpoint.to_owned();
    metrics::counter!("tessera_http_requests_total", "listener" => listener, "endpoint" => endpoint.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("tessera_http_request_duration_seconds", "listener" => listener, "endpoint" => endpoint)
        .record(elapsed.as_secs_f64());
}

pub(crate) fn token_issued(grant: &'static str, format: &'static str) {
    metrics::counter!("tessera_tokens_issued_total", "grant" => grant, "format" => format).increment(1);
}

pub(crate) fn revocation(kind: &'static str) {
    metrics::counter!("tessera_revocations_total", "kind" => kind).increment(1);
}

pub(crate) fn reuse_detected() {
    metrics::counter!("tessera_refresh_reuse_detected_total").increment(1);
}

pub(crate) fn cache(cache: &'static str, hit: bool) {
    metrics::counter!("tessera_cache_total", "cache" => cache, "outcome" => if hit { "hit" } else { "miss" })
        .increment(1);
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^53
pub(crate) fn sampled(pool_size: u32, pool_idle: usize, feed_head: u64) {
    metrics::gauge!("tessera_db_pool_connections", "state" => "open").set(f64::from(pool_size));
    metrics::gauge!("tessera_db_pool_connections", "state" => "idle").set(pool_idle as f64);
    metrics::gauge!("tessera_revocation_feed_head").set(feed_head as f64);
}

#[cfg(test)]
mod tests {
    /// Every metric the sample dashboard queries is one that the server or the gateway records.
    #[test]
    fn the_dashboard_queries_metrics_that_exist() {
        let dashboard = include_str!("../../../docs/grafana-dashboard.json");
        let recorded = [include_str!("metrics.rs"), include_str!("../../tessera-gateway/src/metrics.rs")].concat();
        let mut names: Vec<&str> = dashboard
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("tessera_") && w.len() > "tessera_".len())
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() >= 8, "{names:?}");
        for name in names {
            let base = ["_bucket", "_sum", "_count"].iter().fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
            assert!(recorded.contains(&format!("\"{base}\"")), "the dashboard queries {name}, which nothing records");
        }
    }
}
