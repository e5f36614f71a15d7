//! The rules of an HTTP workload: which paths, how many requests, how many
//! clients, closed or open loop; UDP-only keys are refused.

use std::time::Duration;

use super::span;
use super::workload::Keys;
use crate::scenario::diag::ScenarioErrors;
use crate::scenario::raw;
use crate::scenario::HttpWorkload;
use crate::workload::http::UNTIL_DURATION;

const DEFAULT_PATHS: &[&str] = &["/index.html"];
const DEFAULT_REQUESTS: u64 = 100;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn resolve(
    w: &raw::Workload,
    keys: &Keys<'_>,
    errs: &mut ScenarioErrors,
) -> HttpWorkload {
    keys.forbid(
        &[
            (span(&w.count), "count"),
            (span(&w.size), "size"),
            (span(&w.interval), "interval"),
            (span(&w.flows), "flows"),
        ],
        "udp",
        errs,
    );
    let concurrency = keys.count(&w.concurrency, "concurrency", 1, errs);
    let concurrency = u32::try_from(concurrency).unwrap_or_else(|_| {
        errs.push(
            span(&w.concurrency),
            keys.key("concurrency"),
            "is too large; at most 4294967295",
        );
        1
    });
    let rate = match &w.rate {
        Some(r) if !(*r.get_ref() > 0.0 && r.get_ref().is_finite()) => {
            errs.push(
                Some(r.span()),
                keys.key("rate"),
                format!(
                    "{} is not a rate; give requests per second above 0, or remove it for a closed loop",
                    r.get_ref()
                ),
            );
            None
        }
        r => r.as_ref().map(|r| *r.get_ref()),
    };
    let shaped = super::traffic::resolve(w, keys, concurrency, errs);
    let concurrency = shaped.peak_concurrency.unwrap_or(concurrency).max(1);
    let staged = w.stages.is_some();
    let (http2, streams) = version(w, keys, errs);
    HttpWorkload {
        paths: match (&w.objects, &w.trace) {
            (None, None) => paths(w, keys, errs),
            _ => Vec::new(),
        },
        requests: match (&w.requests, &w.duration, shaped.trace_requests) {
            (Some(_), _, _) => keys.count(&w.requests, "requests", DEFAULT_REQUESTS, errs),
            // A trace: all of it.
            (None, _, Some(n)) => n,
            // With a duration or stages and no count, the workload runs until they end.
            (None, Some(_), _) => UNTIL_DURATION,
            (None, None, _) if staged => UNTIL_DURATION,
            (None, None, _) => DEFAULT_REQUESTS,
        },
        concurrency,
        keep_alive: w.keep_alive.as_ref().map_or(true, |k| *k.get_ref()),
        rate,
        duration: w.duration.as_ref().map(|d| d.get_ref().0),
        timeout: super::udp::measurable_timeout(&w.timeout, DEFAULT_TIMEOUT, keys, errs, true),
        traffic: shaped.traffic,
        http2,
        streams,
        pipeline: u32::try_from(keys.count(&w.pipeline, "pipeline", 1, errs)).unwrap_or(u32::MAX),
    }
}

/// `http_version` (`"1.1"` or `"2"`) and, for HTTP/2 only, `streams`.
fn version(w: &raw::Workload, keys: &Keys<'_>, errs: &mut ScenarioErrors) -> (bool, u32) {
    let http2 = match &w.http_version {
        None => false,
        Some(v) => match v.get_ref().as_str() {
            "1.1" => false,
            "2" => true,
            other => {
                errs.push(
                    Some(v.span()),
                    keys.key("http_version"),
                    format!("`{other}` is not an HTTP version; use \"1.1\" or \"2\""),
                );
                false
            }
        },
    };
    let Some(s) = &w.streams else {
        return (http2, 1);
    };
    if !http2 {
        errs.push(
            Some(s.span()),
            keys.key("streams"),
            "applies to HTTP/2 only (HTTP/1.1 sends one request at a time per connection); add http_version = \"2\" or remove it",
        );
        return (http2, 1);
    }
    let max = crate::workload::http::MAX_STREAMS;
    let n = *s.get_ref();
    if !(1..=i64::from(max)).contains(&n) {
        errs.push(
            Some(s.span()),
            keys.key("streams"),
            format!("{n} is out of range; give 1 to {max} concurrent streams per connection"),
        );
        return (http2, 1);
    }
    if w.keep_alive.as_ref().is_some_and(|k| !*k.get_ref()) && n > 1 {
        errs.push(
            Some(s.span()),
            keys.key("streams"),
            "shares one kept-alive connection; remove keep_alive = false or streams",
        );
    }
    (http2, u32::try_from(n).unwrap_or(1))
}

/// The first character of `path` a request line cannot carry as it is
/// (spaces, controls, `<`, `"`, non-ASCII…), or a `%` not followed by two
/// hex digits; with what to write instead.
fn unsendable(path: &str) -> Option<String> {
    let b = path.as_bytes();
    for (i, c) in path.char_indices() {
        let fine = c.is_ascii_graphic() && !"\"<>\\^`{|}".contains(c);
        if !fine {
            let shown = match c {
                ' ' => "a space".to_string(),
                c if c.is_control() => format!("the control character {}", c.escape_default()),
                c => format!("`{c}`"),
            };
            let mut utf8 = [0u8; 4];
            let encoded: String = c
                .encode_utf8(&mut utf8)
                .bytes()
                .map(|x| format!("%{x:02X}"))
                .collect();
            return Some(format!(
                "holds {shown}, which a request line cannot carry; percent-encode it ({encoded})"
            ));
        }
        if c == '%'
            && !(b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
        {
            return Some(
                "has a `%` not followed by two hex digits; write a literal % as %25".to_string(),
            );
        }
    }
    None
}

/// At least one path, each starting with `/` and sendable as it is.
fn paths(w: &raw::Workload, keys: &Keys<'_>, errs: &mut ScenarioErrors) -> Vec<String> {
    match &w.paths {
        None => DEFAULT_PATHS.iter().map(|s| s.to_string()).collect(),
        Some(p) if p.get_ref().is_empty() => {
            errs.push(
                Some(p.span()),
                keys.key("paths"),
                "is empty; list at least one path, e.g. [\"/index.html\"]",
            );
            Vec::new()
        }
        Some(p) => {
            for path in p.get_ref() {
                if !path.starts_with('/') {
                    errs.push(
                        Some(p.span()),
                        keys.key("paths"),
                        format!("`{path}` does not start with /; write e.g. \"/{path}\""),
                    );
                } else if let Some(why) = unsendable(path) {
                    errs.push(
                        Some(p.span()),
                        keys.key("paths"),
                        format!("`{}` {why}", path.escape_default()),
                    );
                }
            }
            p.get_ref().clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::scenario::{HttpWorkload, WorkloadKind};
    use std::time::Duration;

    fn workload(extra: &str) -> HttpWorkload {
        match &valid(&http(extra)).variants[0].plan.workloads[0].kind {
            WorkloadKind::Http(h) => h.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(
            workload(""),
            HttpWorkload {
                paths: vec!["/index.html".into()],
                requests: 100,
                concurrency: 1,
                keep_alive: true,
                rate: None,
                duration: None,
                timeout: Duration::from_secs(10),
                traffic: crate::workload::source::Traffic {
                    seed: 1,
                    ..Default::default()
                },
                http2: false,
                streams: 1,
                pipeline: 1,
            }
        );
    }

    #[test]
    fn pipeline_is_checked_at_its_key() {
        assert_eq!(workload("pipeline = 16").pipeline, 16);
        let m = problem(&http("pipeline = 0"), "workload.w.pipeline");
        assert_eq!(m, "0 is too small; it must be at least 1");
        let m = problem(&http("pipeline = 257"), "workload.w.pipeline");
        assert!(m.contains("1 to 256"), "{m}");
        let m = problem(
            &http("http_version = \"2\"\npipeline = 4"),
            "workload.w.pipeline",
        );
        assert!(m.contains("clear-text HTTP/1.1"), "{m}");
        let m = problem(
            &http("pipeline = 4\nkeep_alive = false"),
            "workload.w.pipeline",
        );
        assert!(m.contains("kept-alive"), "{m}");
        // The target speaks TLS: the lean clear-text client cannot pipeline.
        let tls = format!("[proxy]\ntls = true\n{}", http("pipeline = 4"));
        let m = problem(&tls, "workload.w.pipeline");
        assert!(m.contains("speaks TLS"), "{m}");
        let udp = problem(
            &super::super::testing::udp("pipeline = 4"),
            "workload.w.pipeline",
        );
        assert!(udp.contains("http"), "{udp}");
    }

    #[test]
    fn open_loop_settings_are_kept() {
        let h = workload("rate = 50.0\nduration = \"2s\"\nconcurrency = 4\nkeep_alive = false");
        assert_eq!(h.rate, Some(50.0));
        assert_eq!(h.duration, Some(Duration::from_secs(2)));
        assert_eq!(h.concurrency, 4);
        assert!(!h.keep_alive);
    }

    #[test]
    fn a_duration_without_requests_runs_for_the_duration() {
        let h = workload("rate = 50.0\nduration = \"2s\"");
        assert_eq!(h.requests, crate::workload::http::UNTIL_DURATION);
        assert!(valid(&http("rate = 50.0\nduration = \"2s\""))
            .warnings()
            .is_empty());
        // 10 requests at 50/s end after 0.2 s of a 2 s duration: a warning.
        let s = valid(&http("rate = 50.0\nduration = \"2s\"\nrequests = 10"));
        let w = s.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("`workload.w.requests` = 10"), "{w:?}");
        assert!(w[0].contains("remove `requests`"), "{w:?}");
        // 100 at 50/s fill the 2 s: no warning.
        let s = valid(&http("rate = 50.0\nduration = \"2s\"\nrequests = 100"));
        assert!(s.warnings().is_empty());
    }

    #[test]
    fn udp_keys_are_refused() {
        let p = problems(&http("count = 5\nsize = \"64B\""));
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["workload.w.count", "workload.w.size"]);
        assert!(
            p[0].1.starts_with("applies to udp workloads only"),
            "{p:#?}"
        );
    }

    #[test]
    fn paths_rate_and_concurrency_are_checked() {
        let m = problem(&http("paths = []"), "workload.w.paths");
        assert!(m.starts_with("is empty"), "{m}");
        let m = problem(&http("paths = [\"index.html\"]"), "workload.w.paths");
        assert!(m.contains("write e.g. \"/index.html\""), "{m}");
        for (bad, said) in [
            ("/a b", "a space"),
            ("/<x>", "`<`"),
            ("/a\\u001b[31m", "control character"),
            ("/100%", "%25"),
        ] {
            let m = problem(&http(&format!("paths = [\"{bad}\"]")), "workload.w.paths");
            assert!(
                m.contains(said) && m.contains("percent-encode") || m.contains("%25"),
                "{m}"
            );
        }
        assert_eq!(super::unsendable("/a%20b?q=1&r=%7E"), None);
        let m = problem(&http("timeout = \"1ns\""), "workload.w.timeout");
        assert!(m.contains("at least 100us"), "{m}");
        let m = problem(&http("rate = 0.0"), "workload.w.rate");
        assert!(m.contains("above 0"), "{m}");
        let m = problem(&http("concurrency = 5000000000"), "workload.w.concurrency");
        assert!(m.contains("at most 4294967295"), "{m}");
    }

    #[test]
    fn http_version_and_streams_are_checked() {
        let h = workload("http_version = \"2\"\nstreams = 8\nconcurrency = 2");
        assert_eq!((h.http2, h.streams), (true, 8));
        let h = workload("http_version = \"1.1\"");
        assert_eq!((h.http2, h.streams), (false, 1));
        let m = problem(&http("http_version = \"3\""), "workload.w.http_version");
        assert!(m.contains("use \"1.1\" or \"2\""), "{m}");
        let m = problem(&http("streams = 4"), "workload.w.streams");
        assert!(m.contains("HTTP/2 only"), "{m}");
        let m = problem(
            &http("http_version = \"2\"\nstreams = 0"),
            "workload.w.streams",
        );
        assert!(m.contains("1 to 256"), "{m}");
        let m = problem(
            &http("http_version = \"2\"\nstreams = 2\nkeep_alive = false"),
            "workload.w.streams",
        );
        assert!(m.contains("keep_alive"), "{m}");
    }
}
