//! Outputs: files written atomically, CSV, tables and progress bars.

pub mod atomic;
pub mod csv_stream;
pub mod table;
