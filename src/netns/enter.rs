//! Doing work inside a network namespace from this one process: a tokio
//! runtime whose threads all entered the namespace (`setns`) before doing
//! anything, and a future wrapper that polls on the caller's thread inside
//! the namespace and sends what it spawns to that runtime. Sockets belong to
//! the namespace they were created in, whichever thread uses them later.

use std::fs::File;
use std::future::Future;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;

/// Moves the calling thread into the network namespace of `ns`.
fn setns(ns: &File) -> std::io::Result<()> {
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    Ok(())
}

/// The current thread's network namespace, to come back to.
fn current() -> std::io::Result<File> {
    File::open("/proc/thread-self/ns/net")
}

/// A runtime living in one network namespace.
pub struct NsRuntime {
    ns: Arc<File>,
    runtime: Option<tokio::runtime::Runtime>,
    /// Set when a thread could not enter the namespace: its sockets would
    /// be in the wrong one, so the work is refused.
    broken: Arc<AtomicBool>,
}

impl NsRuntime {
    /// A runtime of `threads` workers (named `netrun-<role>`) in the namespace at `path`.
    pub fn new(path: &std::path::Path, role: &str, threads: usize) -> anyhow::Result<NsRuntime> {
        let ns =
            Arc::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?);
        let broken = Arc::new(AtomicBool::new(false));
        let (n, b) = (ns.clone(), broken.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(format!("netrun-{role}"))
            .enable_all()
            .on_thread_start(move || {
                if let Err(e) = setns(&n) {
                    tracing::error!("a thread could not enter its network namespace: {e}");
                    b.store(true, Ordering::SeqCst);
                }
            })
            .build()
            .context("cannot start a runtime for a network namespace")?;
        Ok(NsRuntime {
            ns,
            runtime: Some(runtime),
            broken,
        })
    }

    /// `fut`, polled inside the namespace: on the caller's thread (entered
    /// for each poll and left after it), with everything it spawns running
    /// on this runtime's threads.
    pub fn enter<F: Future>(&self, fut: F) -> InNs<F> {
        InNs {
            fut,
            ns: self.ns.clone(),
            handle: self.runtime.as_ref().map(|r| r.handle().clone()),
            broken: self.broken.clone(),
        }
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        // Dropping a runtime inside another one's task would panic; its
        // services were stopped already, so nothing is waited for.
        if let Some(r) = self.runtime.take() {
            r.shutdown_background();
        }
    }
}

pin_project_lite::pin_project! {
    /// A future polled inside a network namespace (see [`NsRuntime::enter`]).
    pub struct InNs<F> {
        #[pin]
        fut: F,
        ns: Arc<File>,
        handle: Option<tokio::runtime::Handle>,
        broken: Arc<AtomicBool>,
    }
}

impl<F: Future> Future for InNs<F> {
    type Output = anyhow::Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.broken.load(Ordering::SeqCst) {
            return Poll::Ready(Err(anyhow::anyhow!(
                "a thread could not enter its network namespace (see the log)"
            )));
        }
        let home = match current() {
            Ok(h) => h,
            Err(e) => return Poll::Ready(Err(e).context("cannot read this thread's namespace")),
        };
        if let Err(e) = setns(this.ns) {
            return Poll::Ready(Err(e).context("cannot enter the network namespace"));
        }
        let result = {
            let _runtime = this.handle.as_ref().map(|h| h.enter());
            this.fut.poll(cx)
        };
        if let Err(e) = setns(&home) {
            // This thread would go on creating sockets in the wrong namespace.
            tracing::error!("cannot leave a network namespace: {e}");
            std::process::abort();
        }
        result.map(Ok)
    }
}

/// Runs `f` on a short-lived thread inside the network namespace at `path`
/// (to make a device there, say), leaving this thread where it is.
pub fn within<R: Send>(path: &std::path::Path, f: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
    let ns = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(&ns).context("cannot enter the network namespace")?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
