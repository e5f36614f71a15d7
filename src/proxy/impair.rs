//! The seam where link impairments (delay, jitter, loss, rate) will plug in.
//! The forwarders ask an [`Impairment`] about every datagram and response;
//! today the only one is [`NoImpairment`], which lets everything through.

use std::time::Duration;

/// Which way traffic is going through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to upstream.
    ToUpstream,
    /// Upstream back to the client.
    ToClient,
}

/// What to do with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it on now.
    Forward,
    /// Drop it (counted as an impairment drop).
    Drop,
}

/// A link model applied by the proxy. Implementations must be cheap: they
/// run in the forwarding hot path.
pub trait Impairment: Send + Sync + 'static {
    /// Decides the fate of a datagram of `len` bytes going `dir`.
    fn datagram(&self, _dir: Direction, _len: usize) -> Verdict {
        Verdict::Forward
    }

    /// Extra delay before an HTTP response head goes `dir`.
    fn http_delay(&self, _dir: Direction) -> Duration {
        Duration::ZERO
    }
}

/// A perfect link.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoImpairment;

impl Impairment for NoImpairment {}
