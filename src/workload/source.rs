//! What an HTTP workload requests and when: listed paths in turn, a
//! synthetic catalog, or a trace; evenly spaced or Poisson arrivals; rates
//! or client counts that ramp through stages. The engine turns this into a
//! feed of tickets; the maths lives in `crate::traffic`.

use std::path::PathBuf;
use std::time::Duration;

use crate::traffic::{Arrivals, Catalog, Profile, Schedule, TraceError, TraceReader};

/// Where request targets come from.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Source {
    /// `paths`, requested in turn.
    #[default]
    Paths,
    /// Objects drawn from a seeded catalog (request `i` from its own stream).
    Catalog(Catalog),
    /// A request trace, read as a stream.
    Trace(TraceReplay),
}

/// How a trace is replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceReplay {
    pub path: PathBuf,
    pub timing: Timing,
    /// Recorded timing: the trace's gaps are divided by this.
    pub speed: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timing {
    /// Each request at its timestamp (relative to the first) / speed, open loop.
    #[default]
    Recorded,
    /// In trace order, as fast as `concurrency` allows.
    Fast,
}

impl Timing {
    pub fn name(self) -> &'static str {
        match self {
            Timing::Recorded => "recorded",
            Timing::Fast => "fast",
        }
    }
}

/// A level that changes through stages: the open loop's rate, or the
/// closed loop's number of active clients.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Ramp {
    #[default]
    None,
    /// Requests per second (open loop), from `rate` through the stages.
    Rate(Profile),
    /// Active clients (closed loop), from `concurrency` through the stages.
    Concurrency(Profile),
}

/// The traffic shape of an HTTP workload beyond `paths` and `rate`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Traffic {
    pub source: Source,
    pub arrivals: Arrivals,
    pub ramp: Ramp,
    /// Seeds the Poisson gaps (the catalog carries its own seed).
    pub seed: u64,
}

impl Traffic {
    /// Whether requests follow a schedule (open loop) without a `rate`.
    pub fn paced(&self) -> bool {
        matches!(self.ramp, Ramp::Rate(_))
            || matches!(&self.source, Source::Trace(t) if t.timing == Timing::Recorded)
    }

    /// The stages' total length, which bounds the run.
    pub fn ramp_length(&self) -> Option<Duration> {
        match &self.ramp {
            Ramp::None => None,
            Ramp::Rate(p) | Ramp::Concurrency(p) => p.length(),
        }
    }
}

/// One request to release: when (offset from the start; `None`: at once)
/// and, for traces, which object (its path).
pub(super) struct FeedItem {
    pub due: Option<Duration>,
    pub object: Option<String>,
}

pub(super) type Feed = Box<dyn Iterator<Item = Result<FeedItem, TraceError>> + Send>;

/// The feed of a workload that needs one (a schedule or a trace); `None`
/// for a closed loop over paths or a catalog (a counter does).
pub(super) fn feed(traffic: &Traffic, rate: Option<f64>) -> Result<Option<Feed>, TraceError> {
    if let Source::Trace(t) = &traffic.source {
        let mut reader = TraceReader::open(&t.path, t.timing == Timing::Recorded)?;
        let (timing, speed) = (t.timing, t.speed);
        let mut first = None;
        let items = std::iter::from_fn(move || reader.next_request()).map(move |r| {
            let (timestamp, path) = r?;
            let due = match timing {
                Timing::Fast => None,
                Timing::Recorded => {
                    let first = *first.get_or_insert(timestamp);
                    Some(Duration::from_secs_f64(
                        ((timestamp - first) / speed).max(0.0),
                    ))
                }
            };
            Ok(FeedItem {
                due,
                object: Some(path),
            })
        });
        return Ok(Some(Box::new(items)));
    }
    let profile = match (&traffic.ramp, rate) {
        (Ramp::Rate(p), _) => p.clone(),
        (_, Some(r)) => Profile::constant(r),
        _ => return Ok(None),
    };
    let schedule = Schedule::new(profile, traffic.arrivals, traffic.seed);
    Ok(Some(Box::new(schedule.map(|d| {
        Ok(FeedItem {
            due: Some(d),
            object: None,
        })
    }))))
}
