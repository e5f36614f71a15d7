//! JUnit XML for CI systems: one `<testsuite>` per scenario, one
//! `<testcase>` per expectation and per gated baseline metric (classname
//! `scenario.variant.workload`), `<failure>` when it failed or a gated
//! figure could not be judged (`<skipped>` for that with
//! `--allow-inconclusive`, and for an inconclusive change), `<system-out>`
//! naming the threshold a `small` change is inside.

use std::io::Write as _;
use std::path::Path;

use quick_xml::events::BytesText;
use quick_xml::Writer;

use super::gate::{GateReport, Key};
use crate::scenario::ExpectationResult;
use crate::stats::Verdict;

/// One test case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub classname: String,
    pub name: String,
    pub outcome: CaseOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaseOutcome {
    Passed,
    /// Passed, with a note for the reader (a `small` change and its threshold).
    PassedWith(String),
    Failed(String),
    Skipped(String),
}

/// One scenario's cases.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub name: String,
    pub cases: Vec<Case>,
}

impl Suite {
    /// The cases of one run: its expectations, then its gated metrics.
    pub fn of(
        scenario: &str,
        expectations: &[ExpectationResult],
        gate: Option<&GateReport>,
    ) -> Suite {
        let mut cases = Vec::new();
        for e in expectations {
            let measured = e
                .actual
                .map_or("(empty)".to_string(), |a| format!("{a:.3}"));
            let repeated = expectations.iter().any(|x| x.repetition > 1);
            let name = if repeated {
                format!("{} {} (repetition {})", e.metric, e.expected, e.repetition)
            } else {
                format!("{} {}", e.metric, e.expected)
            };
            cases.push(Case {
                classname: format!("{scenario}.{}.{}", e.variant, e.workload),
                name,
                outcome: if e.passed {
                    CaseOutcome::Passed
                } else {
                    CaseOutcome::Failed(format!(
                        "expected {}.{} {}, measured {measured}",
                        e.workload, e.metric, e.expected
                    ))
                },
            });
        }
        let allow_inconclusive = gate.is_some_and(|g| g.allow_inconclusive);
        for a in gate.iter().flat_map(|g| &g.assessments) {
            let key = Key {
                scenario: a.scenario.clone(),
                variant: a.variant.clone(),
                workload: a.workload.clone(),
            };
            let line = super::gate::describe(a);
            cases.push(Case {
                classname: key.dotted(),
                name: a.metric.clone(),
                outcome: match a.verdict {
                    Verdict::Worse => CaseOutcome::Failed(format!("REGRESSION {line}")),
                    Verdict::Inconclusive if a.unjudged() && !allow_inconclusive => {
                        CaseOutcome::Failed(format!("NOT JUDGED {line}"))
                    }
                    Verdict::Inconclusive => CaseOutcome::Skipped(line),
                    Verdict::Small => CaseOutcome::PassedWith(line),
                    Verdict::Better | Verdict::Same => CaseOutcome::Passed,
                },
            });
        }
        Suite {
            name: scenario.to_string(),
            cases,
        }
    }
}

/// The XML document for `suites`.
pub fn render(suites: &[Suite]) -> std::io::Result<String> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(quick_xml::events::Event::Decl(
        quick_xml::events::BytesDecl::new("1.0", Some("UTF-8"), None),
    ))?;
    let count = |f: fn(&CaseOutcome) -> bool| {
        suites
            .iter()
            .flat_map(|s| &s.cases)
            .filter(|c| f(&c.outcome))
            .count()
            .to_string()
    };
    let (total, failures, skipped) = (
        count(|_| true),
        count(|o| matches!(o, CaseOutcome::Failed(_))),
        count(|o| matches!(o, CaseOutcome::Skipped(_))),
    );
    w.create_element("testsuites")
        .with_attribute(("name", "netrun"))
        .with_attribute(("tests", total.as_str()))
        .with_attribute(("failures", failures.as_str()))
        .with_attribute(("skipped", skipped.as_str()))
        .write_inner_content(|w| {
            for s in suites {
                write_suite(w, s)?;
            }
            Ok(())
        })?;
    let mut bytes = w.into_inner();
    bytes.push(b'\n');
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn write_suite(w: &mut Writer<Vec<u8>>, s: &Suite) -> std::io::Result<()> {
    let failures = s
        .cases
        .iter()
        .filter(|c| matches!(c.outcome, CaseOutcome::Failed(_)))
        .count()
        .to_string();
    let skipped = s
        .cases
        .iter()
        .filter(|c| matches!(c.outcome, CaseOutcome::Skipped(_)))
        .count()
        .to_string();
    let tests = s.cases.len().to_string();
    w.create_element("testsuite")
        .with_attribute(("name", s.name.as_str()))
        .with_attribute(("tests", tests.as_str()))
        .with_attribute(("failures", failures.as_str()))
        .with_attribute(("errors", "0"))
        .with_attribute(("skipped", skipped.as_str()))
        .write_inner_content(|w| {
            for c in &s.cases {
                let e = w
                    .create_element("testcase")
                    .with_attribute(("classname", c.classname.as_str()))
                    .with_attribute(("name", c.name.as_str()));
                match &c.outcome {
                    CaseOutcome::Passed => {
                        e.write_empty()?;
                    }
                    CaseOutcome::PassedWith(msg) => {
                        e.write_inner_content(|w| {
                            w.create_element("system-out")
                                .write_text_content(BytesText::new(msg))?;
                            Ok(())
                        })?;
                    }
                    CaseOutcome::Failed(msg) => {
                        e.write_inner_content(|w| {
                            w.create_element("failure")
                                .with_attribute(("message", msg.as_str()))
                                .write_text_content(BytesText::new(msg))?;
                            Ok(())
                        })?;
                    }
                    CaseOutcome::Skipped(msg) => {
                        e.write_inner_content(|w| {
                            w.create_element("skipped")
                                .with_attribute(("message", msg.as_str()))
                                .write_empty()?;
                            Ok(())
                        })?;
                    }
                }
            }
            Ok(())
        })?;
    Ok(())
}

/// Writes the document to `path` atomically.
pub fn write(path: &Path, suites: &[Suite]) -> anyhow::Result<()> {
    let text = render(suites)?;
    let mut f = super::atomic::AtomicFile::create(path)?;
    f.write_all(text.as_bytes())?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::gate::Assessment;

    fn assessment(metric: &str, verdict: Verdict) -> Assessment {
        Assessment {
            scenario: "ci".into(),
            variant: "default".into(),
            workload: "qos".into(),
            metric: metric.into(),
            baseline: 0.2,
            now: 2.2,
            change: None,
            verdict,
            reason: "because <reasons> & more".into(),
            one_run: false,
            threshold: crate::stats::Threshold {
                relative: 0.25,
                absolute: 0.5,
            },
        }
    }

    #[test]
    fn cases_read_back_with_a_real_parser() {
        let expectations = [ExpectationResult {
            variant: "default".into(),
            repetition: 1,
            workload: "qos".into(),
            metric: "loss_percent".into(),
            expected: "<= 1".into(),
            actual: Some(5.0),
            passed: false,
        }];
        let gate = GateReport {
            assessments: vec![
                assessment("latency_p50_ms", Verdict::Worse),
                assessment("latency_p90_ms", Verdict::Inconclusive),
                assessment("errors", Verdict::Same),
                assessment("latency_p99_ms", Verdict::Small),
            ],
            host: vec![],
            host_changed: None,
            allow_inconclusive: false,
        };
        let xml = render(&[Suite::of("ci", &expectations, Some(&gate))]).unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(root.attribute("tests"), Some("5"));
        assert_eq!(root.attribute("failures"), Some("3"));
        assert_eq!(root.attribute("skipped"), Some("0"));
        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 5);
        assert!(cases
            .iter()
            .all(|c| c.attribute("classname") == Some("ci.default.qos")));
        let by = |name: &str| {
            *cases
                .iter()
                .find(|c| c.attribute("name") == Some(name))
                .unwrap()
        };
        let failed = by("loss_percent <= 1");
        let f = failed
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert!(f.attribute("message").unwrap().contains("measured 5.000"));
        let worse = by("latency_p50_ms");
        let f = worse
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert!(f.text().unwrap().contains("REGRESSION qos.latency_p50_ms"));
        assert!(
            f.text().unwrap().contains("<reasons> & more"),
            "escaped and read back"
        );
        // A figure that could not be judged fails, unless allowed.
        let unjudged = by("latency_p90_ms");
        let f = unjudged
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert!(f.text().unwrap().contains("NOT JUDGED"));
        assert!(!by("errors").children().any(|n| n.is_element()));
        // `small` passes, and says the threshold it is inside.
        let small = by("latency_p99_ms");
        assert!(!small.children().any(|n| n.has_tag_name("failure")));
        let out = small
            .children()
            .find(|n| n.has_tag_name("system-out"))
            .unwrap();
        assert!(
            out.text().unwrap().contains("small (< 25%, 0.5)"),
            "{:?}",
            out.text()
        );

        let allowed = GateReport {
            allow_inconclusive: true,
            ..gate
        };
        let xml = render(&[Suite::of("ci", &[], Some(&allowed))]).unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        assert_eq!(doc.root_element().attribute("skipped"), Some("1"));
        assert_eq!(doc.root_element().attribute("failures"), Some("1"));
    }
}
