//! `netrun trace zipf|uniform`: writes a synthetic trace from a catalog,
//! timestamps from an arrival schedule, for a workload's `trace` key.

use anyhow::Context as _;

use crate::atomic_file::AtomicFile;
use crate::cli::TraceArgs;
use crate::error::Outcome;
use crate::traffic::{Arrivals, Catalog, Popularity, Profile, Schedule, TraceWriter};

pub fn write(args: &TraceArgs, zipf: bool) -> anyhow::Result<Outcome> {
    let popularity = if zipf {
        Popularity::Zipf { alpha: args.alpha }
    } else {
        Popularity::Uniform
    };
    let catalog = Catalog::new(args.objects, popularity, args.size, args.seed);
    let arrivals = match args.arrivals.as_str() {
        "poisson" => Arrivals::Poisson,
        _ => Arrivals::Constant,
    };
    let schedule = Schedule::new(Profile::constant(args.rate), arrivals, args.seed);
    let file = AtomicFile::create(&args.output)?;
    let mut out = TraceWriter::new(file, &args.output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    for (i, due) in (0..args.requests).zip(schedule) {
        out.write(due.as_secs_f64(), &catalog.request(i))
            .with_context(|| format!("cannot write {}", args.output.display()))?;
    }
    out.finish()
        .with_context(|| format!("cannot write {}", args.output.display()))?
        .commit()?;
    errln!(
        "wrote {} requests over {} objects ({}, sizes {}) to {}",
        args.requests,
        args.objects,
        match popularity {
            Popularity::Zipf { alpha } => format!("zipf alpha {alpha}"),
            Popularity::Uniform => "uniform".into(),
        },
        args.size,
        args.output.display()
    );
    Ok(Outcome::Success)
}
