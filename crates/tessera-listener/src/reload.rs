//! [`reload_on_change`]: the one "reload when the files change or on SIGHUP" loop, used by
//! `tessera serve` (its TLS certificate) and `tessera gateway` (its configuration).

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// When the newest of `files` last changed; `None` while any is missing.
fn modified(files: &[PathBuf]) -> Option<SystemTime> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .max()
}

/// Calls `reload` whenever one of `files` changes (looked at every `every`) and on SIGHUP,
/// until `stop` resolves or `reload` answers `false`. The SIGHUP handler is installed before
/// this returns (the signal's default action ends the process).
pub fn reload_on_change<F, Fut>(
    files: Vec<PathBuf>,
    every: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
    mut reload: F,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    tokio::spawn(async move {
        let mut seen = modified(&files);
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            #[cfg(unix)]
            let signal = async {
                match hangup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let signal = std::future::pending::<()>();
            let forced = tokio::select! {
                () = &mut stop => return,
                _ = interval.tick() => false,
                () = signal => true,
            };
            let now = modified(&files);
            if !forced && now == seen {
                continue;
            }
            seen = now;
            if !reload().await {
                return;
            }
        }
    });
}
