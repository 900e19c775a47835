//! Accepting connections for `tessera serve` (public and admin listeners, plain or TLS) and
//! `tessera gateway`, so that slow or greedy clients cannot hold the server (docs/threat-model.md
//! T-12): at most [`Limits::max_connections`] open connections per listener and
//! [`Limits::max_connections_per_ip`] per client address (IPv6 by /64); each request's headers
//! must arrive within [`Limits::header_read_timeout`] of the connection becoming ready for them,
//! which also closes a keep-alive connection left idle that long; a TLS handshake gets the same
//! deadline. A connection over a cap is closed at once, before anything is read from it.
//!
//! Every request carries `ConnectInfo<SocketAddr>` (the peer) and whatever `on_tls` adds from
//! the TLS session (the server's client certificate).
//!
//! Both binaries also share from here: the client address behind trusted proxies
//! ([`client_ip`]), the reload loop for files that change ([`reload_on_change`]) and the
//! Prometheus recorder ([`prometheus`]).

mod prometheus;
mod reload;

pub use prometheus::prometheus;
pub use reload::reload_on_change;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// How many connections a listener takes, and how long it waits for a request's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at once on this listener. Defaults to 10,000.
    pub max_connections: usize,
    /// Open connections at once from one client address (IPv6: one /64). Defaults to 512.
    pub max_connections_per_ip: usize,
    /// How long a connection may take to send a request's headers once it is ready for the next
    /// request (so also how long it may sit idle between requests), and to finish a TLS
    /// handshake. Defaults to 10 s.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_connections: 10_000, max_connections_per_ip: 512, header_read_timeout: Duration::from_secs(10) }
    }
}

/// The client's address: the peer's, or from a peer in `trusted` (a proxy in front) the nearest
/// `X-Forwarded-For` entry that is not itself a trusted proxy (the leftmost entries are whatever
/// the client wrote, so they are never believed).
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    let Some(chain) = forwarded_for else { return Some(peer) };
    let mut nearest = peer;
    for hop in chain.rsplit(',') {
        let Ok(address) = hop.trim().parse::<IpAddr>() else { return Some(nearest) };
        nearest = address;
        if !trusted.iter().any(|net| net.contains(&address)) {
            break;
        }
    }
    Some(nearest)
}

/// The key a client address is counted under by every throttle and cap: IPv4 as is, IPv6 by its
/// /64 (a host is usually given a whole /64), IPv4-mapped as IPv4.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Open connections, in all and per address. The map holds only addresses with a connection
/// open, so it is bounded by `max_connections`.
#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted connection; its slot is given back when it is dropped.
struct Slot {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

fn admit(open: &Arc<Mutex<Open>>, limits: &Limits, peer: IpAddr) -> Option<Slot> {
    let address = address_key(peer);
    let mut state = open.lock().unwrap_or_else(|p| p.into_inner());
    let from_address = state.by_address.get(&address).copied().unwrap_or(0);
    if state.total >= limits.max_connections || from_address >= limits.max_connections_per_ip {
        return None;
    }
    state.total += 1;
    *state.by_address.entry(address).or_default() += 1;
    Some(Slot { open: open.clone(), address })
}

/// What the TLS session adds to each request (e.g. the client's certificate).
pub type OnTls = Arc<dyn Fn(&rustls_types::ServerConnection, &mut axum::http::Extensions) + Send + Sync>;

/// Re-exported so callers name the same types.
pub mod rustls_types {
    pub use tokio_rustls::rustls::ServerConfig;
    pub use tokio_rustls::rustls::ServerConnection;
}

/// TLS for a listener: the acceptor and what each session adds to its requests.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub on_tls: OnTls,
}

/// Serves `router` on `listener` with `limits` (and `tls`, when given) until `shutdown`
/// resolves, then lets open connections finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Tls>,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let open = Arc::new(Mutex::new(Open::default()));
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::debug!(err = %err, "accept failed");
                    continue;
                }
            },
        };
        let Some(slot) = admit(&open, &limits, remote.ip()) else {
            tracing::debug!(%remote, "connection refused: over the connection limit");
            drop(tcp);
            continue;
        };
        // Small request/response exchanges: never let Nagle's algorithm hold a response back.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(err = %err, "cannot set TCP_NODELAY");
        }
        let (router, builder, watcher, tls) = (router.clone(), builder.clone(), graceful.watcher(), tls.clone());
        let deadline = limits.header_read_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let service = |extensions: axum::http::Extensions| {
                hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request.extensions_mut().insert(ConnectInfo::<SocketAddr>(remote));
                    request.extensions_mut().extend(extensions.clone());
                    router.clone().oneshot(request)
                })
            };
            let served = match tls {
                None => {
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(tcp), service(Default::default()));
                    watcher.watch(connection.into_owned()).await
                }
                Some(tls) => {
                    // A client that never finishes its handshake must not hold a slot.
                    let stream = match tokio::time::timeout(deadline, tls.acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(err)) => {
                            tracing::debug!(err = %err, %remote, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let mut extensions = axum::http::Extensions::new();
                    (tls.on_tls)(stream.get_ref().1, &mut extensions);
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service(extensions));
                    watcher.watch(connection.into_owned()).await
                }
            };
            if let Err(err) = served {
                tracing::debug!(err = %err, %remote, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted), ip("203.0.113.9"), "not a proxy");
        assert_eq!(client_ip(ip("10.0.0.2"), Some("1.2.3.4, 198.51.100.7"), &trusted), ip("198.51.100.7"));
        assert_eq!(client_ip(ip("10.0.0.2"), Some("198.51.100.7, 10.0.0.9"), &trusted), ip("198.51.100.7"));
        assert_eq!(client_ip(ip("10.0.0.2"), Some("garbage"), &trusted), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("10.0.0.2"), None, &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn connections_are_capped_per_listener_and_per_address() {
        let limits = Limits { max_connections: 3, max_connections_per_ip: 2, ..Limits::default() };
        let open = Arc::new(Mutex::new(Open::default()));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a1 = admit(&open, &limits, ip("10.0.0.1")).unwrap();
        let _a2 = admit(&open, &limits, ip("10.0.0.1")).unwrap();
        assert!(admit(&open, &limits, ip("10.0.0.1")).is_none(), "per address");
        let _b = admit(&open, &limits, ip("2001:db8::1")).unwrap();
        assert!(admit(&open, &limits, ip("10.0.0.2")).is_none(), "per listener");
        drop(a1);
        let _a3 = admit(&open, &limits, ip("10.0.0.1")).unwrap();
        // One /64 is one address.
        let limits = Limits { max_connections_per_ip: 1, ..Limits::default() };
        let open = Arc::new(Mutex::new(Open::default()));
        let _c = admit(&open, &limits, ip("2001:db8:1:2::1")).unwrap();
        assert!(admit(&open, &limits, ip("2001:db8:1:2:ffff::9")).is_none());
        assert!(admit(&open, &limits, ip("2001:db8:1:3::1")).is_some());
        drop(_c);
        let state = open.lock().unwrap();
        assert_eq!((state.total, state.by_address.len()), (0, 0), "every slot given back");
    }
}
