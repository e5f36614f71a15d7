//! Small files kept in memory between requests, each use checked against
//! the file system first (one `statx` of the path), so a file changed or
//! replaced on disk is read anew: nginx's `open_file_cache`, made exact.
//! The origin's inline lookup (`http::Fast`) is its only user.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// Files older than this (by mtime and ctime) may be kept: a write always
/// moves ctime to "now", so a later change is seen even where the clock
/// that stamps files is coarse (the trick git uses for its index).
const SETTLED: Duration = Duration::from_secs(1);
/// Most bytes kept; past it the whole table is dropped and refills with
/// what is asked for next (simple, and bounded).
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Most files kept, whatever their size.
const MAX_FILES: usize = 4096;

/// What identifies one version of one file: the same inode, unchanged
/// since (ctime moves on every write and every metadata change, and cannot
/// be set back by anyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub dev: (u32, u32),
    pub ino: u64,
    pub size: u64,
    /// Seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
}

impl Stamp {
    fn settled(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let limit = now.saturating_sub(SETTLED);
        let older = |(s, ns): (i64, u32)| {
            u64::try_from(s).is_ok_and(|s| Duration::new(s, ns.min(999_999_999)) < limit)
        };
        older(self.mtime) && older(self.ctime)
    }
}

/// The table: relative path under the www folder → the bytes of one
/// version of that file, and what else was worked out from that version
/// (`V`: the response head the origin sends for it).
#[derive(Debug)]
pub struct HotFiles<V> {
    table: RwLock<Table<V>>,
}

impl<V> Default for HotFiles<V> {
    fn default() -> Self {
        HotFiles {
            table: RwLock::new(Table {
                files: HashMap::new(),
                bytes: 0,
            }),
        }
    }
}

#[derive(Debug)]
struct Table<V> {
    files: HashMap<PathBuf, (Stamp, Bytes, V)>,
    bytes: usize,
}

impl<V: Clone> HotFiles<V> {
    /// The kept bytes of `rel` (and what was kept with them) if the file on
    /// disk is still the version `now_on_disk` describes.
    pub fn get(&self, rel: &Path, now_on_disk: &Stamp) -> Option<(Bytes, V)> {
        let table = self.table.read().ok()?;
        let (stamp, body, extra) = table.files.get(rel)?;
        (stamp == now_on_disk).then(|| (body.clone(), extra.clone()))
    }

    /// Keeps `body`, read from the version of `rel` that `stamp` describes
    /// (taken before the read), with `extra`, unless that version is too
    /// recent to be told apart from a write still to come.
    pub fn put(&self, rel: &Path, stamp: Stamp, body: &Bytes, extra: V, now: SystemTime) {
        if body.len() as u64 != stamp.size || !stamp.settled(now) {
            return;
        }
        let Ok(mut table) = self.table.write() else {
            return;
        };
        if table.bytes + body.len() > MAX_BYTES || table.files.len() >= MAX_FILES {
            table.files.clear();
            table.bytes = 0;
        }
        table.bytes += body.len();
        let kept = (stamp, body.clone(), extra);
        if let Some((_, old, _)) = table.files.insert(rel.to_path_buf(), kept) {
            table.bytes -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64, size: u64, secs: i64) -> Stamp {
        Stamp {
            dev: (8, 1),
            ino,
            size,
            mtime: (secs, 5),
            ctime: (secs, 7),
        }
    }

    #[test]
    fn only_the_same_settled_version_is_served() {
        let hot = HotFiles::<()>::default();
        let rel = Path::new("a/b.txt");
        let body = Bytes::from_static(b"abc");
        let then = stamp(1, 3, 1_000);
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        // Written this very second: not kept.
        hot.put(rel, then, &body, (), now);
        assert_eq!(hot.get(rel, &then), None);
        let later = now + Duration::from_secs(2);
        hot.put(rel, then, &body, (), later);
        assert_eq!(hot.get(rel, &then), Some((body.clone(), ())));
        // Any change of inode, size, mtime or ctime is another version.
        for other in [
            stamp(2, 3, 1_000),
            stamp(1, 4, 1_000),
            Stamp {
                ctime: (1_001, 0),
                ..then
            },
            Stamp {
                mtime: (999, 0),
                ..then
            },
        ] {
            assert_eq!(hot.get(rel, &other), None, "{other:?}");
        }
        assert_eq!(hot.get(Path::new("a/c.txt"), &then), None);
        // A body that does not match the stamped size is never kept.
        hot.put(Path::new("short"), stamp(3, 9, 1), &body, (), later);
        assert_eq!(hot.get(Path::new("short"), &stamp(3, 9, 1)), None);
    }

    #[test]
    fn the_table_stays_bounded() {
        let hot = HotFiles::<()>::default();
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let body = Bytes::from(vec![0u8; 64 * 1024]);
        for i in 0..1_000u64 {
            let rel = PathBuf::from(format!("f{i}"));
            hot.put(&rel, stamp(i, body.len() as u64, 1), &body, (), now);
        }
        let table = hot.table.read().unwrap();
        assert!(table.bytes <= MAX_BYTES, "{}", table.bytes);
        assert_eq!(
            table.bytes,
            table.files.values().map(|(_, b, _)| b.len()).sum::<usize>()
        );
    }
}
