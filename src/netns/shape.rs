//! Who shapes what on a link between namespaces: `rate` always by the
//! kernel (`tc tbf`), `delay`/`jitter`/`loss_percent` by `tc netem` when the
//! kernel has it, by netrun's in-process model otherwise. Pure: the `tc`
//! arguments and the `check` line are computed here and unit-tested.

use crate::proxy::LinkConfig;
use crate::units::{format_duration, BitRate};

/// One link's knobs split between the kernel and netrun's proxy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// What the `tc` qdiscs on both ends of the link apply.
    pub kernel: LinkConfig,
    /// What stays with the proxy's in-process model (its `LinkConfig`).
    pub in_process: LinkConfig,
}

/// Splits `link`'s knobs: the kernel takes the rate, and the delay, jitter
/// and loss too when `netem` is available.
pub fn split(link: LinkConfig, netem: bool) -> Split {
    let mut kernel = LinkConfig {
        rate_bps: link.rate_bps,
        seed: link.seed,
        ..LinkConfig::default()
    };
    let mut in_process = LinkConfig {
        rate_bps: 0.0,
        ..link
    };
    if netem {
        kernel.delay = link.delay;
        kernel.jitter = link.jitter;
        kernel.loss_percent = link.loss_percent;
        in_process = LinkConfig {
            seed: link.seed,
            ..LinkConfig::default()
        };
    }
    Split { kernel, in_process }
}

/// Whether the knobs that only netem can apply outside the proxy are set.
pub fn needs_netem(link: &LinkConfig) -> bool {
    !link.delay.is_zero() || !link.jitter.is_zero() || link.loss_percent > 0.0
}

/// The `tc qdisc add` argument lists (after `tc -n NS`) that apply `kernel`
/// to the egress of `dev`: netem at the root with tbf beneath it, or tbf
/// alone. Empty for a clean link.
pub fn tc_commands(dev: &str, kernel: &LinkConfig) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut parent = vec!["root".to_string()];
    if needs_netem(kernel) {
        let mut a = words(&["qdisc", "add", "dev", dev, "root", "handle", "1:", "netem"]);
        if !kernel.delay.is_zero() || !kernel.jitter.is_zero() {
            a.extend(words(&["delay", &micros(kernel.delay)]));
            if !kernel.jitter.is_zero() {
                a.push(micros(kernel.jitter));
            }
        }
        if kernel.loss_percent > 0.0 {
            a.extend(words(&["loss", &format!("{}%", kernel.loss_percent)]));
        }
        out.push(a);
        parent = words(&["parent", "1:1"]);
    }
    if kernel.rate_bps > 0.0 {
        let mut a = words(&["qdisc", "add", "dev", dev]);
        a.extend(parent);
        a.extend(words(&["handle", "10:", "tbf"]));
        a.extend(tbf_params(kernel.rate_bps));
        out.push(a);
    }
    out
}

/// tbf's `rate`, `burst` and `limit`: a burst of 4 ms at the rate (at
/// least two full frames, so a 1500-byte packet always fits) keeps the
/// measured rate close to the set one; the queue holds 1000 full frames,
/// the length Linux gives an interface by default (`txqueuelen`), so TCP
/// meets the same queue (and the same queueing delay) as on a real link of
/// that rate rather than tail drops of a queue shorter than its window.
fn tbf_params(rate_bps: f64) -> Vec<String> {
    let bytes_per_s = rate_bps / 8.0;
    let burst = ((bytes_per_s * 0.004) as u64).max(2 * FRAME);
    words(&[
        "rate",
        &format!("{}bit", rate_bps.round() as u64),
        "burst",
        &burst.to_string(),
        "limit",
        &(1000 * FRAME).to_string(),
    ])
}

/// A full Ethernet frame: 1500 bytes of MTU and the 14-byte header.
const FRAME: u64 = 1514;

fn micros(d: std::time::Duration) -> String {
    format!("{}us", d.as_micros())
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// `check`'s line for a link: which knob goes where, e.g.
/// `rate 20Mbit/s: kernel tbf; delay 5ms: in-process (no sch_netem)`.
/// `netem` is `None` when it could not be told (not root).
pub fn describe(link: &LinkConfig, netem: Option<bool>, proxy_on_path: bool) -> String {
    if link.is_none() {
        return "clean".to_string();
    }
    let mut parts = Vec::new();
    if link.rate_bps > 0.0 {
        parts.push(format!("rate {}: kernel tbf", BitRate(link.rate_bps)));
    }
    let mut knobs = Vec::new();
    if !link.delay.is_zero() {
        knobs.push(format!("delay {}", format_duration(link.delay)));
    }
    if !link.jitter.is_zero() {
        knobs.push(format!("jitter {}", format_duration(link.jitter)));
    }
    if link.loss_percent > 0.0 {
        knobs.push(format!("loss {}%", link.loss_percent));
    }
    if !knobs.is_empty() {
        let whom = match (netem, proxy_on_path) {
            (Some(true), _) => "kernel netem".to_string(),
            (Some(false), true) => "in-process (no sch_netem)".to_string(),
            (Some(false), false) => {
                "cannot be applied (no sch_netem, and no netrun process on this path)".to_string()
            }
            (None, true) => "kernel netem if the kernel has it, else in-process".to_string(),
            (None, false) => "kernel netem (the run fails without sch_netem)".to_string(),
        };
        parts.push(format!("{}: {whom}", knobs.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn link() -> LinkConfig {
        LinkConfig {
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(1),
            loss_percent: 2.0,
            rate_bps: 20e6,
            seed: 7,
        }
    }

    #[test]
    fn without_netem_the_kernel_takes_only_the_rate() {
        let s = split(link(), false);
        assert_eq!(s.kernel.rate_bps, 20e6);
        assert!(!needs_netem(&s.kernel));
        assert_eq!(s.in_process.rate_bps, 0.0);
        assert_eq!(s.in_process.delay, Duration::from_millis(5));
        assert_eq!(s.in_process.loss_percent, 2.0);
        assert_eq!(s.in_process.seed, 7);
        assert_eq!(
            tc_commands("eth", &s.kernel),
            [words(&[
                "qdisc",
                "add",
                "dev",
                "eth",
                "root",
                "handle",
                "10:",
                "tbf",
                "rate",
                "20000000bit",
                "burst",
                "10000",
                "limit",
                "1514000"
            ])]
        );
    }

    #[test]
    fn with_netem_the_kernel_takes_everything() {
        let s = split(link(), true);
        assert!(s.in_process.is_none());
        assert_eq!(s.kernel, LinkConfig { ..link() });
        let c = tc_commands("eth", &s.kernel);
        assert_eq!(
            c[0].join(" "),
            "qdisc add dev eth root handle 1: netem delay 5000us 1000us loss 2%"
        );
        assert!(c[1]
            .join(" ")
            .starts_with("qdisc add dev eth parent 1:1 handle 10: tbf"));
    }

    #[test]
    fn a_clean_link_gets_no_qdisc_and_small_rates_a_whole_frame_of_burst() {
        assert!(tc_commands("eth", &LinkConfig::default()).is_empty());
        let slow = tc_commands(
            "eth",
            &LinkConfig {
                rate_bps: 64e3,
                ..LinkConfig::default()
            },
        );
        assert!(slow[0].join(" ").contains("burst 3028 "), "{slow:?}");
    }

    #[test]
    fn check_says_which_knob_goes_where() {
        assert_eq!(
            describe(&link(), Some(false), true),
            "rate 20Mbit/s: kernel tbf; delay 5ms, jitter 1ms, loss 2%: in-process (no sch_netem)"
        );
        assert_eq!(
            describe(&link(), Some(true), false),
            "rate 20Mbit/s: kernel tbf; delay 5ms, jitter 1ms, loss 2%: kernel netem"
        );
        assert!(describe(&link(), Some(false), false).contains("cannot be applied"));
        assert_eq!(describe(&LinkConfig::default(), None, true), "clean");
    }
}
