//! Outputs: files written atomically, CSV, tables and progress bars.

pub mod atomic;
pub mod plan;
pub mod progress;
pub mod summary;
