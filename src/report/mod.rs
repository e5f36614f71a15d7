//! Outputs: files written atomically, CSV, tables and progress bars.

pub mod atomic;
pub mod compare;
pub mod csv_stream;
pub mod gate;
pub mod html;
pub mod junit;
pub mod plan;
pub mod progress;
pub mod run_record;
pub mod stats_csv;
pub mod summary;
pub mod table;
