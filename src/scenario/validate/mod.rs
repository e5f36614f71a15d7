//! raw → resolved: checks every value, fills every default, expands the
//! matrix, and collects every problem with its position. One file per thing
//! decided: the variants (`matrix.rs`), a variant's plan (`plan.rs`), links
//! (`links.rs`) and topology (`topology.rs`), each workload (`workload.rs`, with the rules of
//! each kind in `http.rs` and `udp.rs`) and the thresholds (`expect.rs`).

mod expect;
mod http;
mod links;
mod matrix;
mod packet;
mod plan;
mod read;
mod repeat;
mod tls;
mod topology;
mod traffic;
mod udp;
mod workload;

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::diag::ScenarioErrors;
use super::raw::{self, S};
use super::Scenario;

pub(super) fn validate(path: &Path, source: &str) -> Result<Scenario, ScenarioErrors> {
    let mut errs = ScenarioErrors::new(path, source);
    let (raw, problems) = read::read(source);
    let read_keys: Vec<String> = problems.iter().map(|(_, k, _)| k.clone()).collect();
    for (span, key, message) in problems {
        errs.push(span, key, message);
    }
    let Some(raw) = raw else {
        return Err(errs);
    };
    let read_errors = errs.errors.len();
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = resolve_name(&raw, path, &mut errs);
    let Some(variants) = matrix::variants(&raw, path, source, dir, &mut errs) else {
        return Err(errs);
    };
    let expect = expect::resolve(&raw, &mut errs);
    let (repeat, order) = repeat::resolve(&raw, &mut errs);
    let gate = repeat::resolve_gate(&raw, &variants, &mut errs);
    if !errs.is_empty() {
        // A key the reader refused was read as absent: what the rules then
        // say about it (missing, default) is not news.
        let later = errs.errors.split_off(read_errors);
        errs.errors.extend(later.into_iter().filter(|d| {
            !read_keys
                .iter()
                .any(|k| !k.is_empty() && (d.key == *k || d.key.ends_with(&format!(".{k}"))))
        }));
        errs.errors
            .sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
        return Err(errs);
    }
    Ok(Scenario {
        name,
        description: raw.description.clone().unwrap_or_default(),
        source: path.to_path_buf(),
        digest: crate::shard::digest(source.as_bytes()),
        order_seed: variants.first().map_or(1, |v| v.plan.links.seed()),
        variants,
        expect,
        repeat,
        order,
        gate,
    })
}

/// The scenario's name: `name`, or the file's stem. It names result files.
fn resolve_name(raw: &raw::Scenario, path: &Path, errs: &mut ScenarioErrors) -> String {
    let name = match &raw.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            errs.push(
                Some(n.span()),
                "name",
                "is empty; give the scenario a name or remove the key",
            );
            String::new()
        }
        Some(n) => n.get_ref().clone(),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into()),
    };
    if let Err(why) = check_name(&name) {
        let hint = if raw.name.is_some() {
            "change `name`"
        } else {
            "set `name` (it defaults to the file's stem)"
        };
        errs.push(
            raw.name.as_ref().map(Spanned::span),
            "name",
            format!("`{name}` {why}; results are written to <out>/<name>.csv: {hint}"),
        );
    }
    name
}

/// Longest scenario name, in bytes.
const MAX_NAME: usize = 200;

/// Scenario names become file names under `--out`.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.starts_with('.') {
        return Err("starts with a dot");
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || "-_.".contains(c))
    {
        return Err("may hold only letters, digits, -, _ and .");
    }
    if name.eq_ignore_ascii_case("history") {
        return Err("is taken by history.csv");
    }
    // The longest file made from it, `<name>.interrupted.stats.csv`, must
    // fit the file system's 255-byte limit on a name.
    if name.len() > MAX_NAME {
        return Err("is too long (at most 200 bytes)");
    }
    Ok(())
}

/// The key written just before a value at `offset` (`interval = "10 parsecs"` → `interval`),
/// so type errors from the TOML reader can name it.
pub(super) fn key_before(source: &str, offset: usize) -> String {
    let line_start = source[..offset.min(source.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let prefix = source[line_start..offset.min(source.len())].trim_end();
    let Some(before_eq) = prefix.strip_suffix('=') else {
        return String::new();
    };
    let key = before_eq.trim();
    // Inline tables: `origin = { http = 70000` → `http`.
    let key = key.rsplit(['{', ',']).next().unwrap_or(key).trim();
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || "_-.\"".contains(c))
    {
        key.to_string()
    } else {
        String::new()
    }
}

fn span<T>(v: &S<T>) -> Option<Range<usize>> {
    v.as_ref().map(Spanned::span)
}

/// Helpers for the unit tests of each rule.
#[cfg(test)]
pub(super) mod testing {
    use std::path::PathBuf;

    /// A scenario path in the repository's `scenarios/`, so that the default
    /// `www = "../www"` exists.
    pub fn path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/unit.toml")
    }

    /// The `(key, message)` of every problem in `source`; empty when valid.
    pub fn problems(source: &str) -> Vec<(String, String)> {
        match crate::scenario::parse(&path(), source) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.into_iter().map(|d| (d.key, d.message)).collect(),
        }
    }

    /// The one problem in `source`, whose key must be `key`; its message.
    pub fn problem(source: &str, key: &str) -> String {
        let p = problems(source);
        assert_eq!(p.len(), 1, "expected one problem, got {p:#?}");
        assert_eq!(p[0].0, key, "{p:#?}");
        p[0].1.clone()
    }

    /// A valid scenario.
    pub fn valid(source: &str) -> crate::scenario::Scenario {
        crate::scenario::parse(&path(), source).unwrap_or_else(|e| panic!("{e}"))
    }

    /// One HTTP workload named `w`, with `extra` keys.
    pub fn http(extra: &str) -> String {
        format!("[[workload]]\nkind = \"http\"\nname = \"w\"\n{extra}\n")
    }

    /// One UDP workload named `w`, with `extra` keys.
    pub fn udp(extra: &str) -> String {
        format!("[[workload]]\nkind = \"udp\"\nname = \"w\"\n{extra}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn toml_type_errors_name_the_key_in_plain_words() {
        let m = problem(&http("requests = \"many\""), "requests");
        assert!(m.contains("expected a whole number"), "{m}");
        assert_eq!(key_before("x = { http = 70000", 13), "http");
        let src = "[a]\n  interval = \"10 parsecs\"";
        assert_eq!(key_before(src, src.find('"').unwrap()), "interval");
        assert_eq!(key_before("no equals here", 5), "");
    }

    #[test]
    fn the_name_defaults_to_the_stem_and_must_make_a_file_name() {
        assert_eq!(valid(&http("")).name, "unit");
        let m = problem(&format!("name = \"a/b\"\n{}", http("")), "name");
        assert!(m.contains("may hold only letters"), "{m}");
        let p = problems(&format!("name = \"  \"\n{}", http("")));
        assert_eq!(
            p[0],
            (
                "name".into(),
                "is empty; give the scenario a name or remove the key".into()
            )
        );
        assert_eq!(check_name(".hidden"), Err("starts with a dot"));
        assert_eq!(check_name("History"), Err("is taken by history.csv"));
        assert_eq!(check_name("load-1.5_x"), Ok(()));
    }

    #[test]
    fn problems_come_in_file_order() {
        let src = format!(
            "mode = \"zigzag\"\n{}",
            http("requests = 0\nconcurrency = 0")
        );
        let keys: Vec<String> = problems(&src).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["mode", "workload.w.requests", "workload.w.concurrency"]
        );
    }
}
