//! Signal, then wait: Ctrl-C or SIGTERM cancels a [`CancellationToken`] that
//! every task watches; each service's owner then waits on its own
//! `TaskTracker`, so in-flight work drains instead of being dropped. A run
//! gets an [`Interrupt`]: the first signal stops it gracefully, a second
//! one ends its waits at once.

use std::time::Duration;

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

/// Ctrl-C and SIGTERM, listened to from the moment this is made: a signal
/// that arrives before a task first waits is still seen (and does not kill
/// the process the default way).
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// The next Ctrl-C or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            if self.int.is_none() && self.term.is_none() {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
            tokio::select! {
                _ = one(&mut self.int) => {}
                _ = one(&mut self.term) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A token that is cancelled when Ctrl-C or SIGTERM arrives.
pub fn cancelled_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    let mut signals = Signals::install();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("signal received, shutting down");
        cancel.cancel();
    });
    token
}

/// What the user asked of a run in progress. `stop` (first Ctrl-C): send
/// nothing more, let replies in flight arrive, write the results. `abort`
/// (second Ctrl-C): stop waiting for anything and write what was gathered
/// now. An abort is always a stop too.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    stop: CancellationToken,
    abort: CancellationToken,
}

impl Interrupt {
    pub fn new() -> Self {
        Self::default()
    }

    /// The token cancelled by the first signal (for engines that only stop).
    pub fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn abort(&self) {
        self.stop.cancel();
        self.abort.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    pub fn is_aborted(&self) -> bool {
        self.abort.is_cancelled()
    }

    /// Resolves once the run is aborted.
    pub async fn aborted(&self) {
        self.abort.cancelled().await;
    }
}

/// A bare token stops, and never aborts (callers without a second signal).
impl From<&CancellationToken> for Interrupt {
    fn from(stop: &CancellationToken) -> Self {
        Interrupt {
            stop: stop.clone(),
            abort: CancellationToken::new(),
        }
    }
}

impl From<&Interrupt> for Interrupt {
    fn from(i: &Interrupt) -> Self {
        i.clone()
    }
}

/// How long after the second signal the process may still take to write
/// what it gathered; past it, it exits anyway (code 130). A normal abort
/// writes in well under a second and exits then; the grace only bounds a
/// stuck writer, and 1 s lost whole results on an overloaded host.
pub const ABORT_GRACE: Duration = Duration::from_secs(3);

/// An [`Interrupt`] driven by Ctrl-C or SIGTERM: the first signal stops and
/// calls `on_stop` (which tells the user a second signal quits at once), the
/// second aborts and calls `on_abort`; if the process is still running
/// [`ABORT_GRACE`] later, it exits with 130 (results already committed stay;
/// files being written are never left half-written, see `atomic_file`).
pub fn interrupt_on_signal(
    on_stop: impl FnOnce() + Send + 'static,
    on_abort: impl FnOnce() + Send + 'static,
) -> Interrupt {
    let interrupt = Interrupt::new();
    let i = interrupt.clone();
    let mut signals = Signals::install();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("signal received, stopping");
        i.stop();
        on_stop();
        signals.next().await;
        tracing::info!("second signal received, quitting");
        i.abort();
        on_abort();
        tokio::time::sleep(ABORT_GRACE).await;
        crate::logging::flush();
        std::process::exit(i32::from(crate::error::EXIT_INTERRUPTED));
    });
    interrupt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abort_is_also_a_stop_and_a_bare_token_never_aborts() {
        let i = Interrupt::new();
        assert!(!i.is_stopped() && !i.is_aborted());
        i.stop();
        assert!(i.is_stopped() && !i.is_aborted());
        i.abort();
        assert!(i.is_stopped() && i.is_aborted());
        let token = CancellationToken::new();
        let bare = Interrupt::from(&token);
        token.cancel();
        assert!(bare.is_stopped() && !bare.is_aborted());
    }
}
