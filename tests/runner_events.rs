//! The runner's events, seen through the library API: what a renderer, a
//! report or a repetition loop can rely on (order, positions, rows, progress).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use netrun::runner::{self, Event, Observer};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_run_reports_variants_workloads_and_expectations_in_order() {
    let out = tempfile::tempdir().expect("tempdir");
    let www = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("www");
    let source = format!(
        r#"name = "ev"
[topology]
www = "{}"
[[workload]]
kind = "http"
name = "page"
requests = 5
[[workload]]
kind = "udp"
name = "echo"
count = 20
interval = "0ms"
[matrix]
"cache.enabled" = [true, false]
[expect]
"page.errors" = "<= 0"
"#,
        www.display()
    );
    let file = out.path().join("ev.toml");
    let scenario = netrun::scenario::parse(&file, &source).expect("valid scenario");

    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let last_progress = Arc::new(Mutex::new(Vec::new()));
    let (l, p) = (log.clone(), last_progress.clone());
    let observer: Arc<dyn Observer> = Arc::new(move |e: &Event<'_>| {
        let line = match e {
            Event::RunStarted { scenario, run_id } => {
                assert!(!run_id.is_empty());
                format!("run {}", scenario.name)
            }
            Event::VariantStarted(v) => {
                assert_eq!((v.scenario, v.count, v.repetition), ("ev", 2, 1));
                format!("variant {} {}", v.index, v.label)
            }
            Event::WorkloadStarted {
                at,
                kind,
                target,
                total,
            } => format!(
                "start {}/{} {kind} {target} {total}",
                at.variant.index, at.workload
            ),
            Event::WorkloadProgress { at, progress } => {
                p.lock()
                    .unwrap()
                    .push((at.variant.index, at.workload.to_string(), *progress));
                return;
            }
            Event::WorkloadFinished { at, row } => {
                assert_eq!(row.workload, at.workload);
                assert_eq!(row.variant, at.variant.label);
                format!(
                    "finish {}/{} sent {:?} requests {:?}",
                    at.variant.index, at.workload, row.sent, row.requests
                )
            }
            Event::WorkloadFailed { at, error } => format!("failed {}: {error:#}", at.workload),
            Event::VariantFinished { variant, rows } => {
                format!("end {} with {} rows", variant.index, rows.len())
            }
            Event::ExpectationsChecked { results } => {
                format!(
                    "expect {} checked, {} passed",
                    results.len(),
                    results.iter().filter(|r| r.passed).count()
                )
            }
        };
        l.lock().unwrap().push(line);
    });

    let run = runner::run_scenario(&scenario, out.path(), &observer, &CancellationToken::new())
        .await
        .expect("run");
    assert_eq!(run.rows.len(), 4);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "run ev",
            "variant 0 cache.enabled=true",
            "start 0/page http proxy 5",
            "finish 0/page sent Some(5) requests Some(5)",
            "start 0/echo udp proxy 20",
            "finish 0/echo sent Some(20) requests None",
            "end 0 with 2 rows",
            "variant 1 cache.enabled=false",
            "start 1/page http proxy 5",
            "finish 1/page sent Some(5) requests Some(5)",
            "start 1/echo udp proxy 20",
            "finish 1/echo sent Some(20) requests None",
            "end 1 with 2 rows",
            "expect 2 checked, 2 passed",
        ]
    );

    // Progress counts run up to the total, for each workload of each variant.
    let progress = last_progress.lock().unwrap();
    for (index, workload, total) in [(0, "page", 5), (0, "echo", 20), (1, "page", 5)] {
        let last = progress
            .iter()
            .rev()
            .find(|(i, w, _)| *i == index && w == workload)
            .map(|(_, _, p)| *p)
            .unwrap_or_else(|| panic!("no progress for {index}/{workload}"));
        assert_eq!((last.done, last.total), (total, total), "{workload}");
        if workload == "page" {
            assert_eq!((last.received, last.errors), (5, Some(0)));
        } else {
            assert_eq!(last.errors, None);
        }
    }
}
