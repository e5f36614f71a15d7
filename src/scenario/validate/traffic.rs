//! The traffic keys of an HTTP workload: a catalog (`objects`) or a trace
//! (`trace`, `timing`, `speed`) instead of `paths`, `arrivals`, and
//! `stages` that ramp the rate or the number of clients. Traces are read
//! once here, whole, so a bad line stops the run before it starts.

use std::time::Duration;

use super::span;
use super::workload::Keys;
use crate::scenario::diag::ScenarioErrors;
use crate::scenario::raw;
use crate::traffic::{trace, Arrivals, Catalog, Popularity, Profile, SizeDist, Stage};
use crate::units::ByteSize;
use crate::workload::source::{Ramp, Source, Timing, TraceReplay, Traffic};

/// What the traffic keys resolve to, and what they imply for the rest.
pub(super) struct Resolved {
    pub traffic: Traffic,
    /// A trace's request count: the default of `requests`.
    pub trace_requests: Option<u64>,
    /// Closed-loop stages: the most clients at any time (the workers to start).
    pub peak_concurrency: Option<u32>,
}

const DEFAULT_COUNT: u64 = 1000;
const DEFAULT_ALPHA: f64 = 0.8;
const DEFAULT_SIZE: u64 = 16 * 1024;

pub(super) fn resolve(
    w: &raw::Workload,
    keys: &Keys<'_>,
    concurrency: u32,
    errs: &mut ScenarioErrors,
) -> Resolved {
    let mut out = Resolved {
        traffic: Traffic {
            seed: keys.seed,
            ..Traffic::default()
        },
        trace_requests: None,
        peak_concurrency: None,
    };
    if let (Some(_), Some(o)) = (&w.paths, &w.objects) {
        errs.push(
            Some(o.span()),
            keys.key("objects"),
            "and `paths` are both given; keep one: a catalog of objects, or a list of paths",
        );
    }
    if let Some(t) = &w.trace {
        if w.paths.is_some() || w.objects.is_some() {
            errs.push(
                Some(t.span()),
                keys.key("trace"),
                "comes with `paths` or `objects`; a trace says what to request: remove the others",
            );
        }
    }
    if let Some(o) = &w.objects {
        if let Some(c) = catalog(o.get_ref(), keys, errs) {
            out.traffic.source = Source::Catalog(c);
        }
    }
    let timing = timing(w, keys, errs);
    if let Some(t) = &w.trace {
        let path = keys.dir.join(t.get_ref());
        match trace::scan(&path, timing == Timing::Recorded) {
            Ok(summary) => out.trace_requests = Some(summary.requests),
            Err(e) => errs.push(Some(t.span()), keys.key("trace"), e.to_string()),
        }
        out.traffic.source = Source::Trace(TraceReplay {
            path,
            timing,
            speed: speed(w, keys, errs),
        });
    }
    out.traffic.arrivals = arrivals(w, keys, errs);
    if let Some(stages) = &w.stages {
        let (ramp, peak) = ramp(w, stages.get_ref(), keys, concurrency, errs);
        if w.trace.is_some() {
            errs.push(
                Some(stages.span()),
                keys.key("stages"),
                "cannot shape a trace, which brings its own timing; remove `stages` or `trace`",
            );
        }
        out.traffic.ramp = ramp;
        out.peak_concurrency = peak;
    }
    out
}

fn timing(w: &raw::Workload, keys: &Keys<'_>, errs: &mut ScenarioErrors) -> Timing {
    let Some(t) = &w.timing else {
        return Timing::Recorded;
    };
    if w.trace.is_none() {
        errs.push(
            Some(t.span()),
            keys.key("timing"),
            "applies to a `trace` only; remove it, or add trace = \"traces/….csv\"",
        );
    }
    match t.get_ref().as_str() {
        "recorded" => Timing::Recorded,
        "fast" => Timing::Fast,
        other => {
            errs.push(
                Some(t.span()),
                keys.key("timing"),
                format!("`{other}` is not a timing; use \"recorded\" (the trace's timestamps) or \"fast\" (as fast as `concurrency` allows)"),
            );
            Timing::Recorded
        }
    }
}

fn speed(w: &raw::Workload, keys: &Keys<'_>, errs: &mut ScenarioErrors) -> f64 {
    match &w.speed {
        None => 1.0,
        Some(s) if !(s.get_ref().is_finite() && *s.get_ref() >= 0.001 && *s.get_ref() <= 1e6) => {
            errs.push(
                Some(s.span()),
                keys.key("speed"),
                format!(
                    "{} is out of range; give 0.001 to 1000000 (2 replays twice as fast)",
                    s.get_ref()
                ),
            );
            1.0
        }
        Some(s) => *s.get_ref(),
    }
}

fn arrivals(w: &raw::Workload, keys: &Keys<'_>, errs: &mut ScenarioErrors) -> Arrivals {
    let Some(a) = &w.arrivals else {
        return Arrivals::Constant;
    };
    let open = w.rate.is_some()
        || w.stages
            .as_ref()
            .is_some_and(|s| s.get_ref().iter().any(|st| st.get_ref().rate.is_some()));
    if !open {
        errs.push(
            Some(a.span()),
            keys.key("arrivals"),
            "applies to an open loop; give a `rate` (or stages with `rate`)",
        );
    }
    match a.get_ref().as_str() {
        "constant" => Arrivals::Constant,
        "poisson" => Arrivals::Poisson,
        other => {
            errs.push(
                Some(a.span()),
                keys.key("arrivals"),
                format!("`{other}` is not an arrival process; use \"constant\" or \"poisson\""),
            );
            Arrivals::Constant
        }
    }
}

fn catalog(o: &raw::Objects, keys: &Keys<'_>, errs: &mut ScenarioErrors) -> Option<Catalog> {
    let before = errs.errors.len();
    let count = keys.count(&o.count, "objects.count", DEFAULT_COUNT, errs);
    let alpha = match &o.alpha {
        None => DEFAULT_ALPHA,
        Some(a) if !(a.get_ref().is_finite() && *a.get_ref() > 0.0 && *a.get_ref() <= 10.0) => {
            errs.push(
                Some(a.span()),
                keys.key("objects.alpha"),
                format!("{} is out of range; give an exponent above 0 and at most 10 (0.6 to 1.0 is typical of web traffic)", a.get_ref()),
            );
            DEFAULT_ALPHA
        }
        Some(a) => *a.get_ref(),
    };
    let popularity = match o
        .popularity
        .as_ref()
        .map(|p| (p.get_ref().as_str(), p.span()))
    {
        None | Some(("zipf", _)) => Popularity::Zipf { alpha },
        Some(("uniform", _)) => Popularity::Uniform,
        Some((other, sp)) => {
            errs.push(
                Some(sp),
                keys.key("objects.popularity"),
                format!(
                    "`{other}` is not a popularity; use \"zipf\" (with `alpha`) or \"uniform\""
                ),
            );
            Popularity::Uniform
        }
    };
    let sizes = match &o.size {
        None => SizeDist::Fixed(DEFAULT_SIZE),
        Some(v) => size(v.get_ref()).unwrap_or_else(|e| {
            errs.push(Some(v.span()), keys.key("objects.size"), e);
            SizeDist::Fixed(DEFAULT_SIZE)
        }),
    };
    (errs.errors.len() == before).then(|| Catalog::new(count, popularity, sizes, keys.seed))
}

/// `"16KiB"`, `16384`, or a distribution table.
fn size(v: &toml::Value) -> Result<SizeDist, String> {
    let bytes = |v: &toml::Value, name: &str| -> Result<u64, String> {
        match v {
            toml::Value::Integer(n) if *n >= 0 => Ok(*n as u64),
            toml::Value::String(s) => s.parse::<ByteSize>().map(ByteSize::bytes),
            _ => Err(format!("`{name}` is not a size; write e.g. \"16KiB\"")),
        }
    };
    let toml::Value::Table(t) = v else {
        return bytes(v, "size").map(SizeDist::Fixed);
    };
    const KEYS: &[&str] = &["distribution", "median", "sigma", "min", "shape", "max"];
    if let Some(k) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown key `{k}`; a size distribution takes {}",
            KEYS.join(", ")
        ));
    }
    let get = |name: &str| t.get(name).ok_or_else(|| format!("lacks `{name}`"));
    let number = |name: &str| -> Result<f64, String> {
        match get(name)? {
            toml::Value::Float(f) => Ok(*f),
            toml::Value::Integer(i) => Ok(*i as f64),
            _ => Err(format!("`{name}` is not a number")),
        }
    };
    let d = match get("distribution")?.as_str() {
        Some("lognormal") => SizeDist::LogNormal {
            median: bytes(get("median")?, "median")?,
            sigma: number("sigma")?,
            max: bytes(get("max")?, "max")?,
        },
        Some("pareto") => SizeDist::Pareto {
            min: bytes(get("min")?, "min")?,
            shape: number("shape")?,
            max: bytes(get("max")?, "max")?,
        },
        other => {
            return Err(format!(
                "distribution {} is not one netrun draws; use \"lognormal\" (median, sigma, max) or \"pareto\" (min, shape, max)",
                other.map_or("(not a string)".to_string(), |s| format!("`{s}`"))
            ))
        }
    };
    d.check()?;
    Ok(d)
}

/// Stages of one kind: all `rate` (open loop, from `rate` or 0) or all
/// `concurrency` (closed loop, from `concurrency`).
fn ramp(
    w: &raw::Workload,
    stages: &[toml::Spanned<raw::RawStage>],
    keys: &Keys<'_>,
    concurrency: u32,
    errs: &mut ScenarioErrors,
) -> (Ramp, Option<u32>) {
    let key = keys.key("stages");
    if stages.is_empty() {
        errs.push(
            span(&w.stages),
            &key,
            "is empty; list at least one { duration = \"10s\", rate = 100 }",
        );
        return (Ramp::None, None);
    }
    let mut out = Vec::new();
    let mut by_rate = None;
    for (i, st) in stages.iter().enumerate() {
        let sp = Some(st.span());
        let s = st.get_ref();
        let here = format!("{key}[{}]", i + 1);
        let Some(d) = &s.duration else {
            errs.push(
                sp,
                &here,
                "has no `duration`; write e.g. { duration = \"10s\", rate = 100 }",
            );
            continue;
        };
        let target = match (&s.rate, &s.concurrency) {
            (Some(r), None) => (true, *r.get_ref()),
            (None, Some(c)) => (false, *c.get_ref() as f64),
            _ => {
                errs.push(
                    sp,
                    &here,
                    "needs exactly one of `rate` (open loop) or `concurrency` (closed loop)",
                );
                continue;
            }
        };
        if *by_rate.get_or_insert(target.0) != target.0 {
            errs.push(
                sp,
                &here,
                "mixes `rate` and `concurrency` stages; use one kind throughout",
            );
            continue;
        }
        if !(target.1.is_finite() && target.1 >= 0.0 && target.1 <= 10_000_000.0) {
            errs.push(
                sp,
                &here,
                format!("{} is out of range; give 0 to 10000000", target.1),
            );
            continue;
        }
        if d.get_ref().0 == Duration::ZERO || d.get_ref().0 > crate::workload::MAX_DURATION {
            errs.push(sp, &here, "`duration` must be above 0 and at most 24h");
            continue;
        }
        out.push(Stage {
            duration: d.get_ref().0,
            target: target.1,
        });
    }
    match by_rate {
        Some(true) => {
            let start = w.rate.as_ref().map_or(0.0, |r| *r.get_ref());
            (Ramp::Rate(Profile { start, stages: out }), None)
        }
        Some(false) => {
            if let Some(r) = &w.rate {
                errs.push(
                    Some(r.span()),
                    keys.key("rate"),
                    "comes with `concurrency` stages, which ramp a closed loop; remove `rate`, or give the stages `rate`",
                );
            }
            let start = f64::from(concurrency);
            let peak = out.iter().map(|s| s.target).fold(start, f64::max).ceil();
            let profile = Profile { start, stages: out };
            (
                Ramp::Concurrency(profile),
                Some(peak.min(f64::from(u32::MAX)) as u32),
            )
        }
        None => (Ramp::None, None),
    }
}
