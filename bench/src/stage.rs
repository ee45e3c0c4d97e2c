//! The first-call children run from copies of `bench` and `bench-plain` held
//! in the page cache the same way, whatever way Cargo wrote the two files.
//!
//! Why: a child's first call is mostly first touches of code pages, and
//! what a touch costs depends on how the kernel holds the file's pages. A
//! file the linker has just written and the same bytes read back from disk
//! fault in at different costs (issue 11, sixth round: `bench`'s first call
//! at N = 1,000 went from 118.9 to 66.7 µs, the floor's from 48.1 to 31.3
//! µs, when both binaries were evicted and read back). The link-time
//! contender's child is `bench` and the others' `bench-plain`, so the run
//! would otherwise compare two files in whatever state the build left each.
//! Each is copied next to the originals, written to disk, dropped from the
//! page cache and read back in full, so that both are held as a program
//! read from disk is.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::args::Options;
use crate::Result;

/// The staged copies; removed when dropped.
pub(crate) struct Staged {
    pub exe: PathBuf,
    pub plain_exe: PathBuf,
    _dir: tempfile::TempDir,
}

/// Stages both child binaries in a directory next to `options.exe` (not in
/// the temporary directory, which may be mounted `noexec`).
pub(crate) fn stage_children(options: &Options) -> Result<Staged> {
    let parent = options
        .exe
        .parent()
        .ok_or_else(|| format!("{} has no directory", options.exe.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("bench-children")
        .tempdir_in(parent)?;
    let exe = stage(&options.exe, dir.path())?;
    let plain_exe = stage(&options.plain_exe, dir.path())?;
    Ok(Staged {
        exe,
        plain_exe,
        _dir: dir,
    })
}

fn stage(binary: &Path, dir: &Path) -> Result<PathBuf> {
    let name = binary
        .file_name()
        .ok_or_else(|| format!("{} has no file name", binary.display()))?;
    let copy = dir.join(name);
    std::fs::copy(binary, &copy)
        .map_err(|e| format!("copying {} to {}: {e}", binary.display(), copy.display()))?;
    let file = File::open(&copy)?;
    // Written pages must be clean before the kernel will drop them.
    file.sync_all()?;
    drop_cached_pages(&file)?;
    drop(file);
    std::fs::read(&copy)?;
    Ok(copy)
}

#[cfg(target_os = "linux")]
fn drop_cached_pages(file: &File) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; the call only advises the kernel.
    let status = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if status != 0 {
        return Err(format!("posix_fadvise(DONTNEED) failed: error {status}").into());
    }
    Ok(())
}

/// Elsewhere both copies are at least written the same way, just before
/// the run.
#[cfg(not(target_os = "linux"))]
fn drop_cached_pages(_file: &File) -> Result<()> {
    Ok(())
}
