//! The scenario runner: for each variant, start the services the topology
//! asks for, run the workloads (in order or all at once), collect summary
//! rows and per-sample rows, stop the services, then write the results.

pub mod output;

pub use output::Outputs;
