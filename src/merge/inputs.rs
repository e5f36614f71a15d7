//! The folders given to `netrun merge`: which runs they hold (every
//! `<name>/run.json` beside a `<name>.csv`), grouped by scenario, and the
//! checks that they are parts of one run (same scenario version, every
//! unit exactly once, every segment once). Problems are input errors (exit 2).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::report::run_record::{RunInfo, ShardedFile, RUN_JSON};
use crate::shard::Part;
use crate::Error;

/// How a scenario's parts divide the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Each part ran some of the units (`--shard`, or a whole run).
    Shards,
    /// Each part applied 1/N of the load of every unit (`--segment K/N`).
    Segments(u32),
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Shards => "shards",
            Kind::Segments(_) => "segments",
        }
    }
}

/// One scenario's run found in one input folder.
#[derive(Debug, Clone)]
pub struct RunPart {
    /// The folder as given.
    pub input: PathBuf,
    pub scenario: String,
    /// `<input>/<name>.csv`.
    pub summary: PathBuf,
    /// `<input>/<name>/`.
    pub dir: PathBuf,
    pub info: RunInfo,
    /// An older interrupted run of this part stands beside it (not used).
    pub older_interrupted: bool,
}

impl RunPart {
    /// `shard 2/3`, `segment 1/3` or `whole run`.
    pub fn label(&self) -> String {
        match (self.info.shard, self.info.segment) {
            (_, Some(p)) => format!("segment {p}"),
            (Some(p), None) => format!("shard {p}"),
            (None, None) => "whole run".to_string(),
        }
    }
}

/// The parts of one scenario's run, checked.
#[derive(Debug, Clone)]
pub struct Group {
    pub scenario: String,
    pub kind: Kind,
    /// Shards in run order, segments by K.
    pub parts: Vec<RunPart>,
    /// What `--partial` let through: the shards whose units are missing.
    pub missing: Vec<String>,
}

/// Everything to merge: each scenario's parts, and what is missing from
/// the sharded run (only with `--partial`; otherwise a missing part is refused).
#[derive(Debug, Clone)]
pub struct Plan {
    pub groups: Vec<Group>,
    /// Whole scenarios of the sharded run that no folder holds: `shard 2/2: scenario b`.
    pub missing: Vec<String>,
}

impl Group {
    /// Each unit's position in the whole run's order.
    pub fn order(&self) -> HashMap<(String, u32), usize> {
        self.parts
            .iter()
            .flat_map(|p| &p.info.units)
            .map(|u| ((u.variant.clone(), u.repetition), u.position))
            .collect()
    }
}

/// Finds and checks the runs in `inputs`; `out` must not be one of them.
/// With `partial`, missing shards are listed instead of refused.
pub fn collect(inputs: &[PathBuf], out: &Path, partial: bool) -> Result<Plan, Error> {
    let mut seen: Vec<(PathBuf, &PathBuf)> = Vec::new();
    let out_real = out.canonicalize().ok();
    for input in inputs {
        if !input.is_dir() {
            return Err(Error::input(format!(
                "{} is not a results folder; give the --out folder of each shard or segment run",
                input.display()
            )));
        }
        let real = input.canonicalize().unwrap_or_else(|_| input.clone());
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == real) {
            return Err(Error::input(format!(
                "{} is given twice (also as {}); give each shard's or segment's folder once",
                input.display(),
                first.display()
            )));
        }
        if out_real.as_ref() == Some(&real) {
            return Err(Error::input(format!(
                "--out {} is one of the inputs; the merge would overwrite a part it reads. Give \
                 --out a new folder (e.g. --out results/merged)",
                out.display()
            )));
        }
        seen.push((real, input));
    }

    let mut groups: Vec<(String, Vec<RunPart>)> = Vec::new();
    for input in inputs {
        let found = runs_in(input)?;
        if found.is_empty() {
            return Err(Error::input(format!(
                "{} holds no complete run (no <name>/{RUN_JSON} beside a <name>.csv); give the \
                 --out folder of each shard or segment run",
                input.display()
            )));
        }
        for part in found {
            match groups.iter_mut().find(|(s, _)| *s == part.scenario) {
                Some((_, parts)) => parts.push(part),
                None => groups.push((part.scenario.clone(), vec![part])),
            }
        }
    }
    let groups = groups
        .into_iter()
        .map(|(scenario, parts)| check(scenario, parts, partial))
        .collect::<Result<Vec<Group>, Error>>()?;
    let missing = missing_scenarios(&groups)?;
    let unmerged: Vec<&String> = groups
        .iter()
        .flat_map(|g| &g.missing)
        .chain(&missing)
        .collect();
    if !partial && !unmerged.is_empty() {
        let list: Vec<String> = unmerged.iter().map(|m| m.to_string()).collect();
        return Err(Error::input(format!(
            "the sharded run is incomplete, missing {}. Give every shard's folder, or merge \
             what is here with --partial (the result is marked partial)",
            list.join("; ")
        )));
    }
    Ok(Plan { groups, missing })
}

/// The scenarios of the sharded run (as its shards recorded it) that no
/// folder holds, each with the shards that ran it.
fn missing_scenarios(groups: &[Group]) -> Result<Vec<String>, Error> {
    let mut listed: Option<(&RunPart, &[ShardedFile])> = None;
    let mut n = 1;
    for p in groups.iter().flat_map(|g| &g.parts) {
        if p.info.sharded_run.is_empty() {
            continue;
        }
        n = p.info.shard.map_or(n, |s| s.n);
        match listed {
            None => listed = Some((p, &p.info.sharded_run)),
            Some((first, files)) if files != p.info.sharded_run.as_slice() => {
                return Err(Error::input(format!(
                    "{} and {} are shards of different sharded runs (other files or versions); \
                     merge the shards of one run",
                    first.input.display(),
                    p.input.display()
                )))
            }
            Some(_) => {}
        }
    }
    let Some((_, files)) = listed else {
        return Ok(Vec::new());
    };
    let total: usize = files.iter().map(|f| f.units).sum();
    let mut first = 0;
    let mut out = Vec::new();
    for f in files {
        let units = first..first + f.units;
        first += f.units;
        if units.is_empty() || groups.iter().any(|g| g.scenario == f.scenario) {
            continue;
        }
        let shards: Vec<String> = (1..=n)
            .filter(|&k| {
                let r = Part { k, n }.range(total);
                r.start < units.end && units.start < r.end
            })
            .map(|k| format!("shard {k}/{n}"))
            .collect();
        out.push(format!(
            "{}: scenario `{}` ({} runs)",
            shards.join(", "),
            f.scenario,
            f.units
        ));
    }
    Ok(out)
}

/// The complete runs in one folder, by scenario name. Nothing inside a
/// results folder is followed through a symbolic link (the merge copies
/// what it reads), and a complete run with a newer interrupted run beside
/// it is refused: it is not the part's last run.
fn runs_in(input: &Path) -> Result<Vec<RunPart>, Error> {
    let entries = std::fs::read_dir(input)
        .map_err(|e| Error::input(format!("cannot read {}: {e}", input.display())))?;
    let mut names: Vec<String> = Vec::new();
    for e in entries {
        let e = e.map_err(|e| Error::input(format!("cannot read {}: {e}", input.display())))?;
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let dir = e.path();
        if name.ends_with(".interrupted")
            || !no_link(&dir)?.is_dir()
            || !exists_no_link(&dir.join(RUN_JSON))?
            || !exists_no_link(&input.join(format!("{name}.csv")))?
        {
            continue;
        }
        names.push(name);
    }
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let dir = input.join(&name);
        for e in std::fs::read_dir(&dir)
            .map_err(|e| Error::input(format!("cannot read {}: {e}", dir.display())))?
            .flatten()
        {
            no_link(&e.path())?;
        }
        let info = RunInfo::read(&dir)
            .map_err(|e| Error::input(format!("{e:#}")))?
            .unwrap_or_default();
        if info.scenario_digest.is_empty() || info.units.is_empty() {
            return Err(Error::input(format!(
                "{}/{RUN_JSON} does not list its runs (it was written before netrun could \
                 merge); run the shards again with this netrun",
                dir.display()
            )));
        }
        let summary = input.join(format!("{name}.csv"));
        let older_interrupted = interrupted_beside(input, &name, &summary)?;
        out.push(RunPart {
            input: input.to_path_buf(),
            scenario: info.scenario.clone(),
            summary,
            dir,
            info,
            older_interrupted,
        });
    }
    Ok(out)
}

/// Whether `<name>.interrupted.csv` stands beside the complete run's
/// summary: `false` when not, `true` when it is older; refused when newer
/// (the part's last run was interrupted after the one that would be merged).
fn interrupted_beside(input: &Path, name: &str, summary: &Path) -> Result<bool, Error> {
    let other = input.join(format!("{name}.interrupted.csv"));
    let modified = |p: &Path| {
        std::fs::symlink_metadata(p)
            .and_then(|m| m.modified())
            .map_err(|e| Error::input(format!("cannot read {}: {e}", p.display())))
    };
    if !exists_no_link(&other)? {
        return Ok(false);
    }
    if modified(&other)? > modified(summary)? {
        return Err(Error::input(format!(
            "{} is newer than {}: this part's last run was interrupted, and the complete run \
             beside it is an older one. Run the part again, or remove {name}.interrupted.csv \
             and {name}.interrupted/ to merge the older complete run",
            other.display(),
            summary.display()
        )));
    }
    Ok(true)
}

/// The metadata of `path` itself; a symbolic link is refused, naming it.
fn no_link(path: &Path) -> Result<std::fs::Metadata, Error> {
    let m = std::fs::symlink_metadata(path)
        .map_err(|e| Error::input(format!("cannot read {}: {e}", path.display())))?;
    if m.file_type().is_symlink() {
        let to = std::fs::read_link(path)
            .map(|t| format!(" (to {})", t.display()))
            .unwrap_or_default();
        return Err(Error::input(format!(
            "{} is a symbolic link{to}; a results folder holds only the files a run wrote, \
             and merge follows no links. Replace it with the file itself",
            path.display()
        )));
    }
    Ok(m)
}

/// Whether `path` exists (as itself, not through a link: a link is refused).
fn exists_no_link(path: &Path) -> Result<bool, Error> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        _ => no_link(path).map(|_| true),
    }
}

/// Checks that the parts make one run of one version of the scenario.
fn check(scenario: String, mut parts: Vec<RunPart>, partial: bool) -> Result<Group, Error> {
    let first = &parts[0];
    let refuse = |what: String| Error::input(format!("scenario `{scenario}`: {what}"));
    for p in &parts[1..] {
        if p.info.scenario_digest == first.info.scenario_digest
            && p.info.units_total != first.info.units_total
        {
            return Err(refuse(format!(
                "{} has {} runs in all and {} has {} (a different --repeat?); merge only \
                 folders of one sharded run",
                first.input.display(),
                first.info.units_total,
                p.input.display(),
                p.info.units_total
            )));
        }
        if p.info.scenario_digest != first.info.scenario_digest {
            return Err(refuse(format!(
                "{} and {} ran different versions of the scenario file (digest {} against {}); \
                 merge only folders of runs of the same file",
                first.input.display(),
                p.input.display(),
                first.info.scenario_digest,
                p.info.scenario_digest
            )));
        }
    }
    let segments: Vec<_> = parts.iter().filter_map(|p| p.info.segment).collect();
    if segments.is_empty() {
        let missing = check_shards(&parts).map_err(refuse)?;
        if !missing.is_empty() && !partial {
            return Err(refuse(missing.join("; ")));
        }
        parts.sort_by_key(|p| p.info.units.first().map_or(0, |u| u.position));
        return Ok(Group {
            scenario,
            kind: Kind::Shards,
            parts,
            missing,
        });
    }
    if segments.len() != parts.len() {
        return Err(refuse(
            "some folders hold --segment runs and others not; merge the segments of one run \
             together, or shards together"
                .to_string(),
        ));
    }
    let n = segments[0].n;
    check_segments(&parts, n).map_err(refuse)?;
    parts.sort_by_key(|p| p.info.segment.map_or(0, |s| s.k));
    Ok(Group {
        scenario,
        kind: Kind::Segments(n),
        parts,
        missing: Vec::new(),
    })
}

/// Every unit in at most one part; the units in none, said in one line
/// (empty when every unit is there).
fn check_shards(parts: &[RunPart]) -> Result<Vec<String>, String> {
    let total = parts[0].info.units_total;
    let mut owner: HashMap<usize, &RunPart> = HashMap::new();
    for p in parts {
        for u in &p.info.units {
            if let Some(other) = owner.insert(u.position, p) {
                return Err(format!(
                    "{} ({}) and {} ({}) both ran variant {} repetition {}: the shards overlap. \
                     Give each shard's folder once, from one sharded run",
                    other.input.display(),
                    other.label(),
                    p.input.display(),
                    p.label(),
                    u.variant,
                    u.repetition
                ));
            }
        }
    }
    let missing = (0..total).filter(|i| !owner.contains_key(i)).count();
    if missing > 0 {
        let given: BTreeSet<String> = parts.iter().map(RunPart::label).collect();
        let absent = parts[0]
            .info
            .shard
            .map(|s| {
                let have: BTreeSet<u32> = parts
                    .iter()
                    .filter_map(|p| p.info.shard)
                    .map(|p| p.k)
                    .collect();
                let gone: Vec<String> = (1..=s.n)
                    .filter(|k| !have.contains(k))
                    .map(|k| format!("{k}/{}", s.n))
                    .collect();
                format!("; missing: shard {}", gone.join(", "))
            })
            .unwrap_or_default();
        return Ok(vec![format!(
            "{missing} of its {total} runs are in none of the folders (given: {}){absent}",
            given.into_iter().collect::<Vec<_>>().join(", ")
        )]);
    }
    Ok(Vec::new())
}

/// Every segment 1..=n once, each with the same units.
fn check_segments(parts: &[RunPart], n: u32) -> Result<(), String> {
    let mut by_k: HashMap<u32, &RunPart> = HashMap::new();
    for p in parts {
        let Some(s) = p.info.segment else { continue };
        if s.n != n {
            return Err(format!(
                "{} is segment {s} but {} is a segment of {n}; merge the segments of one run",
                p.input.display(),
                parts[0].input.display()
            ));
        }
        if let Some(other) = by_k.insert(s.k, p) {
            return Err(format!(
                "segment {s} is given twice ({} and {}): the segments overlap",
                other.input.display(),
                p.input.display()
            ));
        }
        if p.info.units != parts[0].info.units {
            return Err(format!(
                "{} and {} ran different variants or repetitions; segments of one run all run \
                 every unit",
                parts[0].input.display(),
                p.input.display()
            ));
        }
    }
    let gone: Vec<String> = (1..=n)
        .filter(|k| !by_k.contains_key(k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !gone.is_empty() {
        return Err(format!(
            "segment {} is missing; give every agent's folder",
            gone.join(", ")
        ));
    }
    Ok(())
}
