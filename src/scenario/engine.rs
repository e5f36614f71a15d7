//! Which engine shapes a link between namespaces (`hosts = "netns"`): the
//! kernel when its qdiscs (tbf, netem where present) can do everything the
//! link asks, netrun's user-space packet link otherwise, or the one
//! `engine = "..."` forces; and the two directions' configs of the
//! user-space link. Pure: `netem` is passed in.

use crate::link::{DirConfig, Service};
use crate::netns::shape;
use crate::proxy::LinkConfig;
use crate::units::format_duration;

use super::{Engine, PacketKnobs};

impl PacketKnobs {
    /// The engine for a link with `link`'s knobs and these, where the
    /// kernel has netem (`Some(true)`), has not, or cannot be told (`None`,
    /// taken as not).
    pub fn engine(&self, link: &LinkConfig, netem: Option<bool>) -> Engine {
        if let Some(e) = self.engine {
            return e;
        }
        if !self.userspace_only().is_empty() || (shape::needs_netem(link) && netem != Some(true)) {
            Engine::Userspace
        } else {
            Engine::Kernel
        }
    }

    /// The user-space link's two directions (from the link's first end to
    /// its second, and back), each with its own random sequence.
    pub fn directions(&self, link: &LinkConfig, salt: u64) -> [DirConfig; 2] {
        let service = match (&self.trace, link.rate_bps > 0.0) {
            (Some(t), _) => Service::Trace(t.clone()),
            (None, true) => Service::Rate(link.rate_bps),
            (None, false) => Service::Unlimited,
        };
        let one = |dir_salt: u64| DirConfig {
            delay: link.delay,
            jitter: link.jitter,
            loss_percent: link.loss_percent,
            burst_loss: self.burst_loss,
            duplicate_percent: self.duplicate_percent,
            reorder_percent: self.reorder_percent,
            service: service.clone(),
            queue: self.queue.unwrap_or_default(),
            outage: self.outage,
            seed: link.seed ^ salt ^ dir_salt,
        };
        [one(0x5555_5555_5555_5555), one(0xAAAA_AAAA_AAAA_AAAA)]
    }

    /// `check`'s line for a link: which engine and what it does, e.g.
    /// `userspace packet link (the kernel has no sch_netem): delay 5ms, loss 1%`.
    pub fn describe(&self, link: &LinkConfig, netem: Option<bool>, proxy_on_path: bool) -> String {
        if link.is_none() && self.userspace_only().is_empty() {
            return "clean".to_string();
        }
        let forced = self.engine.is_some();
        match self.engine(link, netem) {
            Engine::Kernel => {
                let what = shape::describe(link, netem, proxy_on_path);
                if forced {
                    format!("kernel (forced): {what}")
                } else if netem.is_none() && shape::needs_netem(link) {
                    format!(
                        "{}; without sch_netem: userspace packet link",
                        shape::describe(link, Some(true), proxy_on_path)
                    )
                } else {
                    format!("kernel: {what}")
                }
            }
            Engine::Userspace => {
                let why = if forced {
                    "forced".to_string()
                } else if !self.userspace_only().is_empty() {
                    format!(
                        "the kernel cannot apply {}",
                        self.userspace_only().join(", ")
                    )
                } else if netem == Some(false) {
                    "the kernel has no sch_netem".to_string()
                } else {
                    "unless the kernel has sch_netem".to_string()
                };
                let d = &self.directions(link, 0)[0];
                let mut text = format!("userspace packet link ({why}): {d}");
                if !link.jitter.is_zero() {
                    // The Display above names each knob once; say it is per direction.
                    text.push_str(&format!(
                        " (each direction; jitter ±{})",
                        format_duration(link.jitter)
                    ));
                } else {
                    text.push_str(" (each direction)");
                }
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn delayed() -> LinkConfig {
        LinkConfig {
            delay: Duration::from_millis(5),
            seed: 3,
            ..LinkConfig::default()
        }
    }

    #[test]
    fn the_kernel_only_when_it_can_do_everything() {
        let rate = LinkConfig {
            rate_bps: 10e6,
            ..LinkConfig::default()
        };
        let plain = PacketKnobs::default();
        assert_eq!(plain.engine(&rate, Some(false)), Engine::Kernel);
        assert_eq!(plain.engine(&delayed(), Some(false)), Engine::Userspace);
        assert_eq!(plain.engine(&delayed(), Some(true)), Engine::Kernel);
        let dup = PacketKnobs {
            duplicate_percent: 1.0,
            ..PacketKnobs::default()
        };
        assert_eq!(dup.engine(&rate, Some(true)), Engine::Userspace);
        let forced = PacketKnobs {
            engine: Some(Engine::Userspace),
            ..PacketKnobs::default()
        };
        assert_eq!(forced.engine(&rate, Some(true)), Engine::Userspace);
        assert!(forced
            .describe(&rate, Some(true), true)
            .starts_with("userspace packet link (forced): rate 10Mbit/s"));
        assert!(plain
            .describe(&delayed(), Some(false), true)
            .contains("(the kernel has no sch_netem): delay 5ms"));
        assert_eq!(plain.describe(&LinkConfig::default(), None, true), "clean");
    }

    #[test]
    fn each_direction_draws_its_own_sequence() {
        let [a, b] = PacketKnobs::default().directions(&delayed(), 0);
        assert_ne!(a.seed, b.seed);
        assert_eq!(a.delay, Duration::from_millis(5));
        assert_eq!(a.service, Service::Unlimited);
    }
}
