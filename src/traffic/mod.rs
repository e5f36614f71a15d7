//! What synthetic traffic is made of, pure and seeded: a generator whose
//! sequence is fixed by its seed (`rng`), Zipf ranks (`zipf`), object sizes
//! (`sizes`), catalogs of objects (`catalog`), arrival schedules and ramping
//! stages (`arrivals`), and request traces streamed from and to CSV files
//! (`trace`). The HTTP workload and `netrun trace` use them.

pub mod arrivals;
pub mod catalog;
pub mod rng;
pub mod sizes;
pub mod trace;
pub mod zipf;

pub use arrivals::{Arrivals, Profile, Schedule, Stage};
pub use catalog::{Catalog, Object, Popularity, OBJECTS_PREFIX};
pub use sizes::SizeDist;
pub use trace::{TraceError, TraceReader, TraceRecord, TraceWriter};
