//! The scenario parser and validator on any text: a `Scenario` or a list of
//! problems, never a panic; every validated scenario can be cut into
//! segments (or refused) and shown as a plan.

use std::path::Path;

use netrun::shard::Part;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        // Beside the repository's scenarios, so `www = "../www"` resolves.
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/fuzz.toml"
        ));
        let Ok(scenario) = netrun::scenario::parse(path, text) else {
            return;
        };
        let _ = scenario.warnings();
        let _ = netrun::report::plan::render(&scenario);
        for n in 1..=3 {
            for k in 1..=n {
                let part = Part::new(k, n).expect("1 <= k <= n");
                let _ = netrun::scenario::segment::segment(&scenario, part);
            }
        }
    });
}
