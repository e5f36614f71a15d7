//! Workloads: UDP probe bursts and HTTP request loads, measured.

pub mod probe;
