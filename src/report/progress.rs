//! Progress bars: one per workload under a MultiProgress, hidden when stdout
//! is not a terminal or the user asked for `--quiet` / `--json`.

use std::io::IsTerminal;
use std::time::Duration;

use crate::workload::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// A MultiProgress that draws only when it should.
pub fn multi(quiet: bool) -> MultiProgress {
    if quiet || !std::io::stdout().is_terminal() {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    } else {
        MultiProgress::new()
    }
}

/// A bar for one workload: `name [bar] sent/total  rate  elapsed  message`.
pub fn workload_bar(mp: &MultiProgress, name: &str, total: u64) -> ProgressBar {
    if mp.is_hidden() {
        return ProgressBar::hidden();
    }
    let pb = mp.add(ProgressBar::new(total));
    let style = ProgressStyle::with_template(
        "{prefix:>12.bold} [{bar:30.cyan/blue}] {pos:>7}/{len:7} {rate:>9} {elapsed:>4} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    // indicatif's own {per_sec} prints every decimal of the rate.
    .with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        },
    )
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(name.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// A bar shows a workload's progress directly (`netrun probe`).
impl Progress for ProgressBar {
    fn set_total(&self, total: u64) {
        self.set_length(total);
    }

    fn advance(&self, n: u64) {
        self.inc(n);
    }

    fn replies(&self, received: u64, errors: Option<u64>) {
        self.set_message(replies_message(received, errors));
    }
}

/// The bar's message: `12 received` (UDP) or `12 received, 0 errors` (HTTP).
pub fn replies_message(received: u64, errors: Option<u64>) -> String {
    match errors {
        Some(e) => format!("{received} received, {e} errors"),
        None => format!("{received} received"),
    }
}
