//! Signal, then wait: Ctrl-C or SIGTERM cancels a [`CancellationToken`] that
//! every task watches; each service's owner then waits on its own
//! `TaskTracker`, so in-flight work drains instead of being dropped.

use tokio_util::sync::CancellationToken;

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A token that is cancelled when Ctrl-C or SIGTERM arrives.
pub fn cancelled_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        signal().await;
        tracing::info!("signal received, shutting down");
        cancel.cancel();
    });
    token
}
