//! `netrun probe udp` and `netrun probe http`: one workload against any UDP
//! echo service or HTTP server, with a progress bar, a summary table (or
//! JSON) and optionally a per-sample CSV.
//!
//! Exit codes: 0 when anything came back; 3 when not a single reply or
//! response came back (every datagram lost, every request failed at the
//! transport level), after printing the figures; 130 on Ctrl-C, after
//! printing and writing what was gathered.

use std::collections::BTreeMap;

use hyper::Uri;
use indicatif::ProgressBar;
use serde::Serialize;

use crate::cli::{HttpProbeArgs, UdpProbeArgs};
use crate::error::{Error, Outcome};
use crate::metrics::records::Tagged;
use crate::metrics::{HttpRequestRow, SummaryRow, UdpPacketRow};
use crate::net;
use crate::report::csv_stream::CsvStream;
use crate::report::progress;
use crate::report::table::render_summary;
use crate::tls::{ClientTls, Trust};
use crate::traffic::TraceReader;
use crate::workload::http::run_http_summary;
use crate::workload::http::{HttpWire, UNTIL_DURATION};
use crate::workload::source::{Source, Timing, TraceReplay, Traffic};
use crate::workload::{run_http, run_udp, HttpProbeConfig, UdpProbeConfig};

const VARIANT: &str = "default";
const WORKLOAD: &str = "probe";

pub async fn udp(args: UdpProbeArgs) -> anyhow::Result<Outcome> {
    let target = net::resolve(&args.addr, "UDP probe target").await?;
    let config = UdpProbeConfig {
        target,
        count: args.count,
        size: usize::try_from(args.size.bytes()).unwrap_or(usize::MAX),
        interval: args.interval,
        timeout: args.timeout,
        flows: args.flows,
    };
    config.validate().map_err(Error::from)?;
    let mut csv = args
        .csv
        .as_ref()
        .map(CsvStream::create::<UdpPacketRow>)
        .transpose()?;
    let progress = progress_bar(args.quiet || args.json, "udp");
    let cancel = super::interrupt_on_signal();

    let mut on_packet = |mut row: UdpPacketRow| {
        if let Some(csv) = csv.as_mut() {
            row.tag(VARIANT, WORKLOAD, 1);
            csv.write(&row);
        }
    };
    let result = run_udp(&config, &mut on_packet, &progress, &cancel).await;
    progress.finish_and_clear();
    let report = result?;
    if let Some(csv) = csv {
        csv.commit()?;
    }

    let row = label(report.summary(), &args.addr);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&row)?);
    } else {
        out!("{}", render_summary(&row));
    }
    if report.interrupted() {
        return Ok(Outcome::Interrupted);
    }
    if !report.any_reply() {
        return Err(Error::Runtime(format!(
            "no reply from {} ({target}): all {} datagrams were lost; is a UDP echo service listening there?",
            args.addr, report.sent
        ))
        .into());
    }
    Ok(Outcome::Success)
}

/// `--json` for HTTP: the summary row's keys plus the two breakdowns.
#[derive(Serialize)]
struct HttpJson<'a> {
    #[serde(flatten)]
    summary: &'a SummaryRow,
    status_counts: &'a BTreeMap<u16, u64>,
    errors_by_class: &'a BTreeMap<String, u64>,
}

pub async fn http(args: HttpProbeArgs) -> anyhow::Result<Outcome> {
    let (scheme, authority, default_path) = parse_url(&args.url)?;
    let target = net::resolve(&authority, "HTTP probe target").await?;
    let tls = match scheme {
        Scheme::Http if args.ca.is_some() || args.insecure => {
            return Err(Error::input(format!(
                "--ca and --insecure apply to https:// URLs; `{}` is clear text",
                args.url
            ))
            .into())
        }
        Scheme::Http => None,
        Scheme::Https => {
            let trust = match (&args.ca, args.insecure) {
                (Some(ca), _) => Trust::CaFile(ca.clone()),
                (None, true) => Trust::Insecure,
                (None, false) => Trust::System,
            };
            Some(ClientTls::new(&trust, &authority, args.http2)?)
        }
    };
    let (traffic, trace) = trace_traffic(&args)?;
    let config = HttpProbeConfig {
        authority,
        target,
        paths: if args.paths.is_empty() {
            vec![default_path]
        } else {
            args.paths.clone()
        },
        // With a duration and no count, run until the duration ends; a
        // trace: all of it, or until the duration ends.
        requests: match (args.requests, args.duration, trace) {
            (Some(n), _, _) => n,
            (None, Some(_), _) | (None, None, true) => UNTIL_DURATION,
            (None, None, false) => 1,
        },
        concurrency: args.concurrency,
        keep_alive: !args.no_keep_alive,
        rate: args.rate,
        duration: args.duration,
        timeout: args.timeout,
        traffic,
        wire: HttpWire {
            tls,
            http2: args.http2,
            streams: args.streams,
            pipeline: args.pipeline,
        },
        threads: args.threads,
    };
    config.validate().map_err(Error::from)?;
    let mut csv = args
        .csv
        .as_ref()
        .map(CsvStream::create::<HttpRequestRow>)
        .transpose()?;
    let progress = progress_bar(args.quiet || args.json, "http");
    let cancel = super::interrupt_on_signal();

    let result = match csv.as_mut() {
        Some(csv) => {
            let mut on_request = |mut row: HttpRequestRow| {
                row.tag(VARIANT, WORKLOAD, 1);
                csv.write(&row);
            };
            run_http(&config, &mut on_request, &progress, cancel.stop_token()).await
        }
        // No rows wanted: none built.
        None => run_http_summary(&config, &progress, cancel.stop_token()).await,
    };
    progress.finish_and_clear();
    let report = result?;
    if let Some(csv) = csv {
        csv.commit()?;
    }

    let row = label(report.summary(), &args.url);
    if args.json {
        let json = HttpJson {
            summary: &row,
            status_counts: report.status_counts(),
            errors_by_class: report.errors_by_class(),
        };
        outln!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        out!("{}", render_summary(&row));
        for (code, n) in report.status_counts() {
            outln!("  status {code}: {n}");
        }
        for (class, n) in report.errors_by_class() {
            outln!("  error {class}: {n}");
        }
    }
    if report.interrupted() {
        return Ok(Outcome::Interrupted);
    }
    if report.responses == 0 && report.requests > 0 {
        let classes: Vec<String> = report
            .errors_by_class()
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        return Err(Error::Runtime(format!(
            "no response from {} ({target}): all {} requests failed ({}); is an HTTP server listening there?",
            args.url,
            report.requests,
            classes.join(", ")
        ))
        .into());
    }
    Ok(Outcome::Success)
}

/// `--trace`: the replay. The header is checked here (exit 2 before
/// anything is sent); the lines are read as they are sent, so a long trace
/// costs no pass before the clock starts, and a bad line stops the replay
/// there (exit 2, naming the file and line). True when there is a trace.
fn trace_traffic(args: &HttpProbeArgs) -> Result<(Traffic, bool), Error> {
    let Some(path) = &args.trace else {
        return Ok((Traffic::default(), false));
    };
    let timing = match args.timing.as_str() {
        "fast" => Timing::Fast,
        _ => Timing::Recorded,
    };
    let mut reader = TraceReader::open(path, timing == Timing::Recorded)
        .map_err(|e| Error::input(e.to_string()))?;
    match reader.next_request() {
        Some(Err(e)) => return Err(Error::input(e.to_string())),
        None => {
            return Err(Error::input(format!(
                "{}: the trace has no requests after its header",
                path.display()
            )))
        }
        Some(Ok(_)) => {}
    }
    let source = Source::Trace(TraceReplay {
        path: path.clone(),
        timing,
        speed: args.speed,
    });
    let traffic = Traffic {
        source,
        ..Traffic::default()
    };
    Ok((traffic, true))
}

/// Clear text or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// `http://host:port/path?q` → (`http`, `host:port`, `/path?q`); the port
/// defaults to 80, or 443 for `https`.
fn parse_url(url: &str) -> Result<(Scheme, String, String), Error> {
    let bad = |why: &str| {
        Error::input(format!(
            "URL `{url}` {why}; write e.g. http://127.0.0.1:8080/index.html or https://[::1]:8443/"
        ))
    };
    let uri: Uri = url.parse().map_err(|_| bad("is not a URL"))?;
    let (scheme, port) = match uri.scheme_str() {
        Some("http") => (Scheme::Http, 80),
        Some("https") => (Scheme::Https, 443),
        Some(other) => {
            return Err(bad(&format!(
                "uses `{other}`: netrun probes http:// and https:// only"
            )))
        }
        None => return Err(bad("has no scheme")),
    };
    // `host()` keeps an IPv6 literal's brackets, as an authority needs.
    let host = uri.host().ok_or_else(|| bad("has no host"))?;
    let authority = format!("{host}:{}", uri.port_u16().unwrap_or(port));
    let path = uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("/")
        .to_string();
    Ok((scheme, authority, path))
}

fn label(mut row: SummaryRow, target: &str) -> SummaryRow {
    row.scenario = WORKLOAD.into();
    row.variant = VARIANT.into();
    row.workload = WORKLOAD.into();
    row.target = target.into();
    row
}

/// Hidden unless a person is watching (`--quiet`, `--json` or a pipe hide it).
/// The run's bar style, on stdout only when it is a terminal.
fn progress_bar(hidden: bool, prefix: &'static str) -> ProgressBar {
    progress::workload_bar(&progress::multi(hidden), prefix, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/a/b?c=1").unwrap(),
            (Scheme::Http, "127.0.0.1:8080".into(), "/a/b?c=1".into())
        );
        assert_eq!(
            parse_url("http://localhost").unwrap(),
            (Scheme::Http, "localhost:80".into(), "/".into())
        );
        assert_eq!(
            parse_url("http://[::1]:81/").unwrap(),
            (Scheme::Http, "[::1]:81".into(), "/".into())
        );
        assert_eq!(
            parse_url("https://example.com/").unwrap(),
            (Scheme::Https, "example.com:443".into(), "/".into())
        );
        assert!(parse_url("ftp://example.com/").is_err());
        assert!(parse_url("127.0.0.1:80").is_err());
        assert!(parse_url("not a url").is_err());
    }
}
