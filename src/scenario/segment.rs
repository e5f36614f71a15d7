//! `--segment K/N`: the K-th of N agents' share of every workload's load, so
//! N agents together apply the scenario's load to one running topology (as
//! k6's execution segments). Counts are split so the N shares add up to the
//! whole (remainders to the first segments); a rate follows its requests.

use super::{Scenario, Service, Target, WorkloadKind};
use crate::shard::Part;
use crate::workload::http::UNTIL_DURATION;

/// The scenario as segment `part` runs it. Refused (with the key to change)
/// when a workload targets a service the run would start itself (each agent
/// would load its own copy, not a shared one), or when a count is smaller
/// than the number of segments (some agent would get nothing to do).
pub fn segment(scenario: &Scenario, part: Part) -> Result<Scenario, crate::Error> {
    let mut out = scenario.clone();
    if part.is_whole() {
        return Ok(out);
    }
    let file = scenario.source.display();
    let refuse = |what: String| crate::Error::input(format!("--segment {part}: {file}: {what}"));
    for v in &mut out.variants {
        let topology = &v.plan.topology;
        for w in &mut v.plan.workloads {
            let service = match w.target {
                Target::Proxy => topology.proxy,
                Target::Origin => topology.origin,
            };
            if let Service::Spawn { .. } = service {
                let t = w.target.as_str();
                return Err(refuse(format!(
                    "workload `{}` targets the {t} that this run would start itself, so each agent \
                     would load its own copy; segments share one running service: give its address \
                     in [topology], e.g. `{t} = {{ address = \"10.0.0.5:8000\" }}`",
                    w.name
                )));
            }
            let name = w.name.clone();
            // Refused for every K alike, so no agent starts when one cannot.
            let split = |key: &str, total: u64| -> Result<u64, crate::Error> {
                if total < u64::from(part.n) {
                    return Err(refuse(format!(
                        "`workload.{name}.{key}` = {total} cannot be split into {} segments \
                         (some agent would get none); use at most {total} segments",
                        part.n
                    )));
                }
                Ok(part.share(total))
            };
            match &mut w.kind {
                WorkloadKind::Http(h) => {
                    let concurrency = split("concurrency", u64::from(h.concurrency))?;
                    h.concurrency = u32::try_from(concurrency).unwrap_or(h.concurrency);
                    if h.requests == UNTIL_DURATION {
                        h.rate = h.rate.map(|r| r / f64::from(part.n));
                    } else {
                        let requests = split("requests", h.requests)?;
                        // The rate follows the requests, so every agent ends together.
                        h.rate = h.rate.map(|r| r * requests as f64 / h.requests as f64);
                        h.requests = requests;
                    }
                }
                WorkloadKind::Udp(u) => {
                    if u.flows >= part.n {
                        let flows = split("flows", u64::from(u.flows))?;
                        u.flows = u32::try_from(flows).unwrap_or(u.flows);
                    } else {
                        u.count = split("count", u.count)?;
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(workloads: &str) -> Scenario {
        crate::scenario::parse(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/unit.toml"),
            &format!(
                "[topology]\norigin = {{ address = \"127.0.0.1:8000\", udp_address = \"127.0.0.1:9000\" }}\n\
                 proxy = {{ address = \"127.0.0.1:8080\", udp_address = \"127.0.0.1:9090\" }}\n{workloads}"
            ),
        )
        .unwrap()
    }

    fn parts(s: &Scenario, n: u32) -> Vec<Scenario> {
        (1..=n)
            .map(|k| segment(s, Part { k, n }).unwrap())
            .collect()
    }

    #[test]
    fn http_requests_concurrency_and_rate_add_up_to_the_whole() {
        let s = scenario(
            "[[workload]]\nkind = \"http\"\nname = \"h\"\nrequests = 100\nconcurrency = 4\nrate = 50\n",
        );
        let segs = parts(&s, 3);
        let http = |s: &Scenario| match &s.variants[0].plan.workloads[0].kind {
            WorkloadKind::Http(h) => h.clone(),
            WorkloadKind::Udp(_) => unreachable!(),
        };
        let got: Vec<(u64, u32)> = segs
            .iter()
            .map(|s| (http(s).requests, http(s).concurrency))
            .collect();
        assert_eq!(got, [(34, 2), (33, 1), (33, 1)]);
        let rate: f64 = segs.iter().filter_map(|s| http(s).rate).sum();
        assert!((rate - 50.0).abs() < 1e-9, "{rate}");
        assert_eq!(http(&segs[0]).rate, Some(50.0 * 34.0 / 100.0));
    }

    #[test]
    fn udp_splits_flows_when_there_are_enough_else_the_count() {
        let udp = |s: &Scenario| match &s.variants[0].plan.workloads[0].kind {
            WorkloadKind::Udp(u) => (u.count, u.flows),
            WorkloadKind::Http(_) => unreachable!(),
        };
        let many = scenario("[[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = 10\nflows = 4\n");
        let got: Vec<_> = parts(&many, 3).iter().map(udp).collect();
        assert_eq!(got, [(10, 2), (10, 1), (10, 1)]);
        let one = scenario("[[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = 20\n");
        let got: Vec<_> = parts(&one, 3).iter().map(udp).collect();
        assert_eq!(got, [(7, 1), (7, 1), (6, 1)]);
        assert_eq!(segment(&one, Part::WHOLE).unwrap(), one);
    }

    #[test]
    fn refuses_started_services_and_counts_below_the_segments() {
        let spawned = crate::scenario::parse(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/unit.toml"),
            "[[workload]]\nkind = \"udp\"\nname = \"u\"\n",
        )
        .unwrap();
        let e = segment(&spawned, Part { k: 1, n: 2 })
            .unwrap_err()
            .to_string();
        assert!(e.contains("--segment 1/2") && e.contains("address"), "{e}");
        let small = scenario("[[workload]]\nkind = \"http\"\nname = \"h\"\nrequests = 2\n");
        let e = segment(&small, Part { k: 1, n: 3 })
            .unwrap_err()
            .to_string();
        assert!(e.contains("`workload.h.concurrency` = 1"), "{e}");
    }
}
