//! Files written to a temporary name in the same folder and renamed into
//! place, so an interrupted run (or a crash) never leaves a half-written file
//! where a good one stood: a file is either the old one or the complete new
//! one. `tempfile` does the naming, cleanup and rename; this adds the
//! buffering and the flush-and-sync before the rename.
//!
//! The sync is what makes the guarantee hold across a crash: the content
//! must be on disk before the rename is. One file alone is synced by itself
//! (`fsync`). Files committed together ([`commit_all`]: a run's results) are
//! first all flushed to their temporary names, then made durable with one
//! `syncfs` per file system they are on, and only then renamed, in order:
//! one wait for the disk instead of one per file (a run writes eight or
//! nine; at this size the waits cost more than everything else a short run
//! does). The price: `syncfs` also writes out whatever else is waiting to
//! be written on that file system, so on a machine busy writing elsewhere
//! that one wait can be longer than a few `fsync`s would have been.
//! Elsewhere than Linux each file is synced by itself.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use tempfile::NamedTempFile;

/// A file being written; it appears under its real name only on [`AtomicFile::commit`].
/// Dropped without commit, the temporary file is removed.
pub struct AtomicFile {
    path: PathBuf,
    writer: BufWriter<NamedTempFile>,
    /// The first write that failed (a full disk, say): past it the file
    /// has a hole, so it must never be committed.
    failed: Option<String>,
}

impl AtomicFile {
    pub fn create(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => {
                fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create folder {}", dir.display()))?;
                dir.to_path_buf()
            }
            None => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        // A hidden name ending in .tmp, next to the real file so the rename
        // stays on one file system.
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // tempfile's own default (0600) would make results private; a plain
        // `File::create` gives 0666 less the umask, as users expect.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        let tmp = builder
            .tempfile_in(&dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(AtomicFile {
            path,
            writer: BufWriter::new(tmp),
            failed: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(self) -> anyhow::Result<()> {
        let path = self.path.clone();
        self.commit_to(path)
    }

    /// [`AtomicFile::commit`], under another name (on the same file system:
    /// an interrupted run's files go beside the complete ones).
    pub fn commit_to(self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        self.stage_to(path)?.commit()
    }

    /// Flushes the file to its temporary name, for [`commit_all`] to sync
    /// and rename into place with others.
    pub fn stage(self) -> anyhow::Result<Staged> {
        let path = self.path.clone();
        self.stage_to(path)
    }

    /// [`AtomicFile::stage`], to be renamed to `path` (on the same file system).
    pub fn stage_to(self, path: impl AsRef<Path>) -> anyhow::Result<Staged> {
        let path = path.as_ref().to_path_buf();
        if let Some(e) = &self.failed {
            anyhow::bail!(
                "cannot write {}: {e} (an earlier write failed, so the file would be incomplete)",
                path.display()
            );
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create folder {}", dir.display()))?;
        }
        let tmp = self
            .writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Staged { tmp, path })
    }
}

/// A complete file under its temporary name, waiting for [`commit_all`].
/// Dropped instead, its temporary file is removed.
pub struct Staged {
    tmp: NamedTempFile,
    path: PathBuf,
}

impl Staged {
    /// Syncs and renames this file alone into place.
    pub fn commit(self) -> anyhow::Result<()> {
        commit_all(vec![self])
    }
}

/// Makes every staged file's content durable, then renames each into place,
/// in order. Nothing is renamed unless every file is on disk; a rename that
/// fails stops there (the files before it are in place, each complete).
pub fn commit_all(files: Vec<Staged>) -> anyhow::Result<()> {
    sync(&files)?;
    for Staged { tmp, path } in files {
        let tmp_path = tmp.path().to_path_buf();
        tmp.persist(&path).map_err(|e| e.error).with_context(|| {
            format!("cannot rename {} to {}", tmp_path.display(), path.display())
        })?;
    }
    Ok(())
}

/// Puts the staged files' content on disk: one `fsync` for a single file,
/// one `syncfs` per file system for several (see the module's notes).
fn sync(files: &[Staged]) -> anyhow::Result<()> {
    let context = |f: &Staged| format!("cannot write {}", f.path.display());
    #[cfg(target_os = "linux")]
    if files.len() > 1 {
        use std::os::unix::fs::MetadataExt;
        let mut synced: Vec<u64> = Vec::new();
        for f in files {
            let file = f.tmp.as_file();
            let dev = file.metadata().with_context(|| context(f))?.dev();
            if !synced.contains(&dev) {
                rustix::fs::syncfs(file)
                    .map_err(io::Error::from)
                    .with_context(|| context(f))?;
                synced.push(dev);
            }
        }
        return Ok(());
    }
    for f in files {
        f.tmp.as_file().sync_all().with_context(|| context(f))?;
    }
    Ok(())
}

impl AtomicFile {
    /// Remembers the first failure of `result`.
    fn note<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if let (Err(e), None) = (&result, &self.failed) {
            self.failed = Some(e.to_string());
        }
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.writer.write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.writer.flush();
        self.note(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_leaves_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        fs::write(&p, "old").unwrap();
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.write_all(b"new, unfinished").unwrap();
        }
        assert_eq!(fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file removed"
        );
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A writer that fails its second write, as a disk filling up would.
    #[test]
    fn a_file_with_a_failed_write_is_never_committed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        fs::write(&p, "old").unwrap();
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"first").unwrap();
        let r = f.note::<()>(Err(io::Error::other("No space left on device")));
        assert!(r.is_err());
        f.write_all(b"after the hole").unwrap();
        let e = format!("{:#}", f.commit().unwrap_err());
        assert!(e.contains("No space left") && e.contains("a.csv"), "{e}");
        assert_eq!(fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Files committed together all appear, each complete; until then
    /// (or if they are dropped instead) the old ones stay.
    #[test]
    fn files_committed_together_replace_the_old_ones_only_at_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("sub/b.csv"));
        fs::write(&a, "old a").unwrap();
        let stage = |p: &Path, text: &str| {
            let mut f = AtomicFile::create(p).unwrap();
            f.write_all(text.as_bytes()).unwrap();
            f.stage().unwrap()
        };
        let staged = vec![stage(&a, "new a"), stage(&b, "new b")];
        assert_eq!(fs::read_to_string(&a).unwrap(), "old a");
        assert!(!b.exists());
        drop(staged);
        assert_eq!(fs::read_to_string(&a).unwrap(), "old a");
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 0);

        let staged = vec![stage(&a, "new a"), stage(&b, "new b")];
        commit_all(staged).unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(fs::read_to_string(&b).unwrap(), "new b");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporaries left"
        );
        // A file whose write failed is refused when staged.
        let mut f = AtomicFile::create(&a).unwrap();
        let _ = f.note::<()>(Err(io::Error::other("No space left on device")));
        assert!(f.stage().is_err());
        assert_eq!(fs::read_to_string(&a).unwrap(), "new a");
    }

    #[test]
    fn creates_missing_folders() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x/y/z.log");
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"line\n").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "line\n");
    }

    #[cfg(unix)]
    #[test]
    fn committed_file_is_readable_by_others_like_a_plain_create() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        fs::write(&plain, "x").unwrap();
        let p = dir.path().join("atomic");
        AtomicFile::create(&p).unwrap().commit().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), mode(&plain));
    }
}
