//! Workloads: UDP probe bursts and HTTP request loads, measured.
