//! The rules of a UDP workload: datagram size and count, flows, pacing and
//! reply timeout, and whether its target has a UDP side at all; HTTP-only
//! keys are refused.

use std::ops::Range;
use std::time::Duration;

use super::span;
use super::workload::{duration, Keys};
use crate::scenario::diag::ScenarioErrors;
use crate::scenario::raw;
use crate::scenario::{Service, Target, Topology, UdpWorkload};
use crate::workload::probe::{HEADER_LEN, MAX_DATAGRAM};

/// The shortest reply timeout a run can measure against: replies on
/// loopback take tens of µs and the timer wakes to tens of µs, so a shorter
/// one would make every reply late (UDP) or every request fail (HTTP)
/// whatever the system does.
const MIN_TIMEOUT: Duration = Duration::from_micros(100);

/// A workload's `timeout`, refused when 0 or shorter than [`MIN_TIMEOUT`]
/// (`zero_checked_elsewhere`: the HTTP engine refuses 0 with its own message).
pub(super) fn measurable_timeout(
    v: &raw::S<crate::units::HumanDuration>,
    default: Duration,
    keys: &Keys<'_>,
    errs: &mut ScenarioErrors,
    zero_checked_elsewhere: bool,
) -> Duration {
    let timeout = duration(v, default);
    if timeout.is_zero() && !zero_checked_elsewhere {
        errs.push(
            span(v),
            keys.key("timeout"),
            "is 0; every reply would be lost; give e.g. \"1s\"",
        );
    } else if !timeout.is_zero() && timeout < MIN_TIMEOUT {
        errs.push(
            span(v),
            keys.key("timeout"),
            format!(
                "{timeout:?} is shorter than any reply can take (loopback alone takes tens of \
                 µs), so every reply would be late; give at least 100us"
            ),
        );
    }
    timeout
}

const DEFAULT_COUNT: u64 = 20;
const DEFAULT_SIZE: u64 = 128;
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Most parallel senders one workload may have.
const MAX_FLOWS: u64 = 1024;

pub(super) fn resolve(
    w: &raw::Workload,
    keys: &Keys<'_>,
    errs: &mut ScenarioErrors,
) -> UdpWorkload {
    keys.forbid(
        &[
            (span(&w.paths), "paths"),
            (span(&w.requests), "requests"),
            (span(&w.concurrency), "concurrency"),
            (span(&w.keep_alive), "keep_alive"),
            (span(&w.rate), "rate"),
            (span(&w.duration), "duration"),
            (span(&w.objects), "objects"),
            (span(&w.trace), "trace"),
            (span(&w.timing), "timing"),
            (span(&w.speed), "speed"),
            (span(&w.arrivals), "arrivals"),
            (span(&w.stages), "stages"),
            (span(&w.http_version), "http_version"),
            (span(&w.streams), "streams"),
            (span(&w.pipeline), "pipeline"),
        ],
        "http",
        errs,
    );
    let size = w
        .size
        .as_ref()
        .map_or(DEFAULT_SIZE, |s| s.get_ref().bytes());
    if !(HEADER_LEN as u64..=MAX_DATAGRAM as u64).contains(&size) {
        errs.push(
            span(&w.size),
            keys.key("size"),
            format!("{size} bytes is out of range; a probe datagram is {HEADER_LEN} to {MAX_DATAGRAM} bytes (its header is {HEADER_LEN})"),
        );
    }
    let flows = keys.count(&w.flows, "flows", 1, errs);
    if flows > MAX_FLOWS {
        errs.push(
            span(&w.flows),
            keys.key("flows"),
            format!("{flows} is too many; at most {MAX_FLOWS} parallel senders"),
        );
    }
    let timeout = measurable_timeout(&w.timeout, DEFAULT_TIMEOUT, keys, errs, false);
    UdpWorkload {
        count: keys.count(&w.count, "count", DEFAULT_COUNT, errs),
        size: size as usize,
        interval: duration(&w.interval, DEFAULT_INTERVAL),
        timeout,
        flows: flows as u32,
    }
}

/// A UDP workload needs a UDP address at its target, and through a spawned
/// proxy, at the origin the proxy forwards to.
pub(super) fn check_target(
    target: Target,
    topology: Option<&Topology>,
    wsp: &Range<usize>,
    keys: &Keys<'_>,
    errs: &mut ScenarioErrors,
) {
    let Some(t) = topology else { return };
    let origin_has_no_udp = matches!(t.origin, Service::External { udp: None, .. });
    let problem = match (target, t.proxy) {
        (Target::Origin, _) if origin_has_no_udp => Some(
            "the origin is external and has no `udp_address`; add one or target the proxy",
        ),
        (Target::Proxy, Service::External { udp: None, .. }) => Some(
            "the proxy is external and has no `udp_address`; add one or target the origin",
        ),
        (Target::Proxy, Service::Spawn { .. }) if origin_has_no_udp => Some(
            "the proxy forwards UDP to the origin, but the external origin has no `udp_address`; add one",
        ),
        _ => None,
    };
    if let Some(p) = problem {
        errs.push(Some(wsp.clone()), keys.key("target"), p);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::scenario::{UdpWorkload, WorkloadKind};
    use std::time::Duration;

    fn workload(extra: &str) -> UdpWorkload {
        match &valid(&udp(extra)).variants[0].plan.workloads[0].kind {
            WorkloadKind::Udp(u) => u.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(
            workload(""),
            UdpWorkload {
                count: 20,
                size: 128,
                interval: Duration::from_millis(100),
                timeout: Duration::from_secs(2),
                flows: 1,
            }
        );
    }

    #[test]
    fn http_keys_are_refused() {
        let m = problem(&udp("requests = 5"), "workload.w.requests");
        assert!(m.starts_with("applies to http workloads only"), "{m}");
    }

    #[test]
    fn sizes_flows_and_timeouts_are_checked() {
        let m = problem(&udp("size = \"8B\""), "workload.w.size");
        assert!(m.contains("32 to 65507 bytes"), "{m}");
        let m = problem(&udp("size = \"65508B\""), "workload.w.size");
        assert!(m.starts_with("65508 bytes is out of range"), "{m}");
        assert_eq!(workload("size = \"65507B\"").size, 65_507);
        let m = problem(&udp("flows = 1025"), "workload.w.flows");
        assert!(m.contains("at most 1024"), "{m}");
        let m = problem(&udp("timeout = \"0s\""), "workload.w.timeout");
        assert!(m.contains("every reply would be lost"), "{m}");
        let m = problem(&udp("timeout = \"1ns\""), "workload.w.timeout");
        assert!(m.contains("at least 100us"), "{m}");
        assert_eq!(
            workload("timeout = \"100us\"").timeout,
            Duration::from_micros(100)
        );
    }

    #[test]
    fn the_target_needs_a_udp_side() {
        let external_origin = "[topology]\norigin = { address = \"127.0.0.1:8000\" }\n".to_string();
        let m = problem(
            &format!("{external_origin}{}", udp("target = \"origin\"")),
            "workload.w.target",
        );
        assert!(m.contains("add one or target the proxy"), "{m}");
        let m = problem(
            &format!("{external_origin}{}", udp("")),
            "workload.w.target",
        );
        assert!(m.contains("the proxy forwards UDP to the origin"), "{m}");
        let m = problem(
            &format!(
                "[topology]\nproxy = {{ address = \"127.0.0.1:8080\" }}\n{}",
                udp("")
            ),
            "workload.w.target",
        );
        assert!(m.contains("add one or target the origin"), "{m}");
        // With UDP addresses everything is reachable.
        assert!(problems(&format!(
            "[topology]\norigin = {{ address = \"127.0.0.1:8000\", udp_address = \"127.0.0.1:9000\" }}\n{}",
            udp("")
        ))
        .is_empty());
    }
}
