//! Pure statistics for comparisons and CI gates: descriptive figures,
//! confidence intervals (t, seeded bootstrap, Wilson/Newcombe), the
//! Mann–Whitney U test, and the verdict rules built on them. No I/O, no
//! knowledge of scenarios or CSVs: callers hand in numbers.

mod bootstrap;
mod describe;
mod interval;
mod mann_whitney;
mod verdict;

pub use bootstrap::{bootstrap_change, bootstrap_ci, Statistic};
pub use describe::{mean, quantile, stddev, Describe};
pub use interval::{newcombe_difference, t_interval, wilson, Interval};
pub use mann_whitney::{mann_whitney, smallest_p, MannWhitney};
pub use verdict::{judge, proportion_change, sample_change, Change, Direction, Threshold, Verdict};

/// The confidence level of every interval netrun prints (95 %).
pub const LEVEL: f64 = 0.95;
/// The significance level of the tests behind verdicts (two-sided).
pub const ALPHA: f64 = 0.05;
