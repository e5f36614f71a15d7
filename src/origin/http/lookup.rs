//! Finding the file a request names, never outside the www folder: inline
//! with `statx` and `openat2` when the kernel can confine the lookup, else on
//! the blocking pool with canonical paths (symlinks, odd types, old kernels).

use std::io::{self, Read};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxFlags};

use crate::clock::Clock;

use super::body::FileHead;
use crate::origin::hot::{HotFiles, Stamp};
use crate::origin::path::SafePath;
use crate::origin::LOG_TARGET;

/// Files up to this size are read whole in the lookup; larger ones are
/// streamed.
pub(super) const CHUNK: usize = 64 * 1024;

/// Opens the canonical www folder for [`Fast::lookup`] (`O_PATH`: a handle
/// to resolve names beneath, not to read).
pub(super) fn open_root(root: &Path) -> Option<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(root, flags, Mode::empty())
        .map_err(|e| {
            tracing::debug!(target: LOG_TARGET, root = %root.display(), error = %e,
                "cannot open the www folder for fast lookups; using the slow path")
        })
        .ok()
}

/// Resolution rules of every fast open: the kernel refuses any step out of
/// the www folder and any symlink, so what opens is inside by construction.
pub(super) fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// The lookup done inline on the runtime thread, as nginx does for a hot
/// file: a `statx` to learn the type and validators without opening
/// anything (a FIFO or device is never opened), then an `openat2` confined
/// by [`beneath`]. No canonicalization, no blocking-pool trip; for a cached
/// page these are microseconds. `None` hands the request to the slow path
/// ([`lookup_blocking`]), which decides every case this one does not:
/// symlinks anywhere on the path, odd file types, permission and other
/// errors, kernels without `openat2` (Linux < 5.6).
pub(super) struct Fast<'a> {
    pub(super) dir: BorrowedFd<'a>,
    pub(super) hot: &'a HotFiles<Arc<FileHead>>,
    pub(super) clock: &'a dyn Clock,
}

impl Fast<'_> {
    pub(super) fn lookup(&self, safe: &SafePath, want_body: bool) -> Option<Lookup> {
        let rel = safe.relative();
        let (kind, stamp) = match stat_beneath(self.dir, &rel) {
            Ok(found) => found,
            // Missing whichever way the path is resolved: the slow path says 404 too.
            Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::NOTDIR => {
                return Some(Lookup::NotFound)
            }
            Err(_) => return None,
        };
        if kind == FileType::RegularFile && !safe.trailing_slash {
            return self.open(rel, stamp, want_body);
        }
        if kind != FileType::Directory {
            return None;
        }
        // The folder itself must be reachable without a symlink before its
        // existence is told by a redirect.
        open_beneath(self.dir, &rel, OFlags::PATH | OFlags::DIRECTORY).ok()?;
        if !safe.trailing_slash {
            return Some(Lookup::Redirect);
        }
        let index = rel.join("index.html");
        match stat_beneath(self.dir, &index) {
            Ok((FileType::RegularFile, stamp)) => self.open(index, stamp, want_body),
            _ => None,
        }
    }

    /// Answers from [`HotFiles`] when the file on disk is the version kept
    /// (the same inode as one opened by [`open_beneath`] before, unchanged:
    /// its bytes are the ones that were inside then); otherwise opens it
    /// beneath the folder and reads a small one whole.
    fn open(&self, rel: PathBuf, stamp: Stamp, want_body: bool) -> Option<Lookup> {
        if let Some((body, head)) = self.hot.get(&rel, &stamp) {
            let content = if want_body {
                Content::Small(body)
            } else {
                Content::None
            };
            return Some(Lookup::File(Box::new((head, content))));
        }
        // HEAD reads nothing: an O_PATH open proves the path is inside.
        let flags = if want_body {
            OFlags::RDONLY
        } else {
            OFlags::PATH
        };
        let fd = open_beneath(self.dir, &rel, flags).ok()?;
        // The type goes by the extension: the relative path has the same.
        let head = Arc::new(FileHead::new(&rel, &meta_of(&stamp)));
        if !want_body {
            return Some(Lookup::File(Box::new((head, Content::None))));
        }
        let content = match read_content(std::fs::File::from(fd), head.len) {
            Ok(c) => c,
            Err(e) => return Some(Lookup::Failed(e)),
        };
        if let Content::Small(body) = &content {
            self.hot
                .put(&rel, stamp, body, head.clone(), self.clock.wall());
        }
        Some(Lookup::File(Box::new((head, content))))
    }
}

/// Type and version of `rel` without following a final symlink (an
/// earlier one is caught by the `openat2` that follows, or cannot matter
/// to [`HotFiles`], which only answers for the very inode it read).
pub(super) fn stat_beneath(
    dir: BorrowedFd<'_>,
    rel: &Path,
) -> rustix::io::Result<(FileType, Stamp)> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let st = rustix::fs::statx(
        dir,
        rel,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE
            | StatxFlags::SIZE
            | StatxFlags::MTIME
            | StatxFlags::CTIME
            | StatxFlags::INO,
    )?;
    let kind = FileType::from_raw_mode(rustix::fs::RawMode::from(st.stx_mode));
    // Without a timestamp or inode the version cannot be told: never kept.
    let wanted = (StatxFlags::MTIME | StatxFlags::CTIME | StatxFlags::INO).bits();
    let known = st.stx_mask & wanted == wanted;
    Ok((
        kind,
        Stamp {
            dev: (st.stx_dev_major, st.stx_dev_minor),
            ino: st.stx_ino,
            size: st.stx_size,
            mtime: (st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec),
            ctime: if known {
                (st.stx_ctime.tv_sec, st.stx_ctime.tv_nsec)
            } else {
                (i64::MAX, 0)
            },
        },
    ))
}

pub(super) fn meta_of(stamp: &Stamp) -> Meta {
    let (secs, nanos) = stamp.mtime;
    let modified = u64::try_from(secs)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::new(s, nanos.min(999_999_999))));
    Meta {
        len: stamp.size,
        modified,
    }
}

pub(super) fn open_beneath(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
) -> rustix::io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    // NONBLOCK: should a FIFO replace the file between the statx and this
    // open, the open must not wait for a writer on a runtime thread. An
    // `O_PATH` open opens nothing, and `openat2` refuses it any flag but
    // CLOEXEC, DIRECTORY and NOFOLLOW (EINVAL).
    let flags = if flags.contains(OFlags::PATH) {
        flags | OFlags::CLOEXEC
    } else {
        flags | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK
    };
    rustix::fs::openat2(dir, rel, flags, Mode::empty(), beneath())
}

pub(super) fn lookup_blocking(
    root: &Path,
    joined: &Path,
    trailing_slash: bool,
    want_body: bool,
) -> Lookup {
    let (real, meta) = match resolve_inside(root, joined) {
        Ok(found) => found,
        Err(l) => return l,
    };
    let (file, meta) = if meta.is_dir() {
        if !trailing_slash {
            return Lookup::Redirect;
        }
        match resolve_inside(root, &real.join("index.html")) {
            Ok((index, meta)) if meta.is_file() => (index, meta),
            Ok(_) => return Lookup::NotFound,
            Err(l) => return l,
        }
    } else if trailing_slash || !meta.is_file() {
        // `/file.txt/`, or a FIFO/device that must never be opened.
        return Lookup::NotFound;
    } else {
        (real, meta)
    };
    let meta = Meta {
        len: meta.len(),
        modified: meta.modified().ok(),
    };
    let head = Arc::new(FileHead::new(&file, &meta));
    if !want_body {
        return Lookup::File(Box::new((head, Content::None)));
    }
    let content = match std::fs::File::open(&file).and_then(|f| read_content(f, meta.len)) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Lookup::Forbidden,
        Err(e) => return Lookup::Failed(e),
    };
    Lookup::File(Box::new((head, content)))
}

/// Small files are read whole here; larger ones are streamed.
pub(super) fn read_content(f: std::fs::File, len: u64) -> io::Result<Content> {
    if len <= CHUNK as u64 {
        let mut buf = Vec::with_capacity(len as usize);
        // `take` keeps the body at the announced length even if the file grows.
        f.take(len).read_to_end(&mut buf)?;
        if buf.len() as u64 != len {
            return Err(io::Error::other("file shrank while being read"));
        }
        Ok(Content::Small(Bytes::from(buf)))
    } else {
        Ok(Content::Stream(f))
    }
}

pub(super) fn resolve_inside(
    root: &Path,
    p: &Path,
) -> Result<(PathBuf, std::fs::Metadata), Lookup> {
    let real = std::fs::canonicalize(p).map_err(io_lookup)?;
    if !real.starts_with(root) {
        return Err(Lookup::Outside(real));
    }
    let meta = std::fs::metadata(&real).map_err(io_lookup)?;
    Ok((real, meta))
}

/// A file's body, ready to send.
pub(super) enum Content {
    /// HEAD: no body is read.
    None,
    Small(Bytes),
    Stream(std::fs::File),
}

/// What a response needs to know of a file: its length and validators.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    pub(super) len: u64,
    pub(super) modified: Option<SystemTime>,
}

pub(super) enum Lookup {
    /// Boxed: the other variants are small.
    File(Box<(Arc<FileHead>, Content)>),
    Redirect,
    Outside(PathBuf),
    NotFound,
    /// The name cannot be resolved for a reason the client caused (a
    /// segment too long for the file system, a symlink loop): 404, warned.
    Unresolvable(io::Error),
    Forbidden,
    Failed(io::Error),
}

/// Resolving a name only looks names up, so every failure but a permission
/// one means "no file by that name": a client's mistake, never a 500.
pub(super) fn io_lookup(e: io::Error) -> Lookup {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Lookup::NotFound,
        io::ErrorKind::PermissionDenied => Lookup::Forbidden,
        _ => Lookup::Unresolvable(e),
    }
}
