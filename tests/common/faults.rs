//! Fault injection for the hostile tests, through SQLite's C API and the
//! operating system rather than mocks:
//!
//! - [`with_interrupt_at`]: a progress handler that interrupts the statement
//!   running at its k-th tick (once), so that a sweep over k fails every
//!   statement of a call in turn, the runner's own included;
//! - [`interrupt_the_next_statement`]: the same, for the one statement that
//!   runs next, armed by user code for the runner's own next statement;
//! - [`fail_every_commit`]: a commit hook, installed as each COMMIT starts,
//!   that turns it into a rollback;
//! - [`sweep`]: runs such a sweep adaptively (every tick when the call is
//!   short, or under `MIGRATE_LONG=1`; evenly spread ticks otherwise);
//! - [`ExclusiveHolder`]: another connection, on a thread, holding
//!   `BEGIN EXCLUSIVE` on a file;
//! - [`ReaderOnCall`]: another connection, on a thread, that takes a read
//!   lock when a step asks and holds it for a while;
//! - [`SmallTmpfs`]: a tiny tmpfs, to run out of disk space for real.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use migrate_core::rusqlite::{ffi, Connection};

/// What the progress handler saw during one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    /// How many times SQLite called the handler.
    pub ticks: u64,
    /// Whether it interrupted a statement.
    pub fired: bool,
}

struct TickState {
    ticks: Cell<u64>,
    fire_at: Option<u64>,
    fired: Cell<bool>,
}

/// SQLite calls this every `n` virtual-machine steps (here `n = 1`); a
/// non-zero answer interrupts the running statement with `SQLITE_INTERRUPT`.
unsafe extern "C" fn on_tick(state: *mut c_void) -> c_int {
    // SAFETY: `state` is the `TickState` installed with this callback, alive
    // until the handler is removed.
    let state = unsafe { &*(state as *const TickState) };
    let tick = state.ticks.get() + 1;
    state.ticks.set(tick);
    if state.fire_at == Some(tick) && !state.fired.get() {
        state.fired.set(true);
        1
    } else {
        0
    }
}

/// Removes the handler when dropped, also when `f` panics.
struct Installed {
    handle: *mut ffi::sqlite3,
}

impl Drop for Installed {
    fn drop(&mut self) {
        // SAFETY: the connection outlives this guard (it is borrowed for
        // the whole of `with_interrupt_at`).
        unsafe { ffi::sqlite3_progress_handler(self.handle, 0, None, std::ptr::null_mut()) };
    }
}

/// Runs `f` with a progress handler on `conn` that counts its ticks and
/// makes the statement running at tick `fire_at` fail with
/// `SQLITE_INTERRUPT`, exactly once (`None`: never, just count). The handler
/// is removed before this returns, so that whatever the test checks next
/// runs undisturbed.
pub fn with_interrupt_at<T>(
    conn: &mut Connection,
    fire_at: Option<u64>,
    f: impl FnOnce(&mut Connection) -> T,
) -> (T, Injection) {
    let state = Box::new(TickState {
        ticks: Cell::new(0),
        fire_at,
        fired: Cell::new(false),
    });
    // SAFETY: a valid handle; the state is boxed (stable address) and
    // outlives the handler, which `Installed` removes before `state` drops.
    let installed = unsafe {
        let handle = conn.handle();
        ffi::sqlite3_progress_handler(
            handle,
            1,
            Some(on_tick),
            &*state as *const TickState as *mut c_void,
        );
        Installed { handle }
    };
    let value = f(conn);
    drop(installed);
    let injection = Injection {
        ticks: state.ticks.get(),
        fired: state.fired.get(),
    };
    (value, injection)
}

/// Set while the one-shot handler of [`interrupt_the_next_statement`] has
/// not fired yet.
static ONE_SHOT_ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

unsafe extern "C" fn one_shot(_: *mut c_void) -> c_int {
    c_int::from(ONE_SHOT_ARMED.swap(false, std::sync::atomic::Ordering::SeqCst))
}

/// Makes the next statement run on `conn` (whoever runs it) fail with
/// `SQLITE_INTERRUPT`, and only that one: for user code that wants the
/// runner's own next statement interrupted. One connection at a time (the
/// state is process-wide); [`remove_interrupts`] removes the handler.
pub fn interrupt_the_next_statement(conn: &Connection) {
    ONE_SHOT_ARMED.store(true, std::sync::atomic::Ordering::SeqCst);
    // SAFETY: a valid handle; the handler keeps no pointer.
    unsafe {
        ffi::sqlite3_progress_handler(conn.handle(), 1, Some(one_shot), std::ptr::null_mut())
    };
}

unsafe extern "C" fn refuse_commit(_: *mut c_void) -> c_int {
    1
}

unsafe extern "C" fn arm_at_commit(
    event: std::ffi::c_uint,
    _: *mut c_void,
    statement: *mut c_void,
    sql: *mut c_void,
) -> c_int {
    if event == ffi::SQLITE_TRACE_STMT as std::ffi::c_uint && !sql.is_null() {
        // SAFETY: for SQLITE_TRACE_STMT, `sql` is the statement's text,
        // NUL-terminated, and `statement` the statement being run.
        let text = unsafe { std::ffi::CStr::from_ptr(sql as *const std::ffi::c_char) };
        if text
            .to_bytes()
            .get(..6)
            .is_some_and(|start| start.eq_ignore_ascii_case(b"COMMIT"))
        {
            // SAFETY: the statement's own connection, valid while it runs;
            // the hook keeps no pointer.
            unsafe {
                let db = ffi::sqlite3_db_handle(statement as *mut ffi::sqlite3_stmt);
                ffi::sqlite3_commit_hook(db, Some(refuse_commit), std::ptr::null_mut());
            }
        }
    }
    0
}

/// Makes every `COMMIT` run on `conn` fail (SQLite rolls the transaction
/// back, `SQLITE_CONSTRAINT_COMMITHOOK`): a statement trace installs a
/// commit hook that refuses as the COMMIT starts, after anything the code
/// under test did with hooks while its user code ran. Until
/// [`remove_interrupts`].
pub fn fail_every_commit(conn: &Connection) {
    // SAFETY: a valid handle; the callback keeps no pointer.
    unsafe {
        ffi::sqlite3_trace_v2(
            conn.handle(),
            ffi::SQLITE_TRACE_STMT as std::ffi::c_uint,
            Some(arm_at_commit),
            std::ptr::null_mut(),
        )
    };
}

/// Removes any progress handler, statement trace and commit hook from
/// `conn`.
pub fn remove_interrupts(conn: &Connection) {
    // SAFETY: a valid handle.
    unsafe {
        ffi::sqlite3_progress_handler(conn.handle(), 0, None, std::ptr::null_mut());
        ffi::sqlite3_trace_v2(conn.handle(), 0, None, std::ptr::null_mut());
        ffi::sqlite3_commit_hook(conn.handle(), None, std::ptr::null_mut());
    }
}

/// What a sweep did.
#[derive(Debug, Clone, Copy)]
pub struct Swept {
    /// Ticks of the uninterrupted call (the calibration).
    pub calibrated_ticks: u64,
    /// Distance between two interrupted ticks.
    pub stride: u64,
    /// How many interrupted calls ran.
    pub attempts: u64,
}

/// Interrupts a call at tick 1, 1 + stride, 1 + 2·stride, … until a call
/// completes without the interrupt firing. `attempt(fire_at)` must set up a
/// fresh case, make the call under [`with_interrupt_at`], check whatever
/// must hold after it, and return the injection. The stride is chosen from
/// an uninterrupted calibration call (`attempt(None)`) so that about
/// `budget` calls run; `MIGRATE_LONG=1` sweeps every tick.
pub fn sweep(budget: u64, mut attempt: impl FnMut(Option<u64>) -> Injection) -> Swept {
    let calibration = attempt(None);
    assert!(!calibration.fired);
    let long = std::env::var("MIGRATE_LONG").is_ok_and(|v| v == "1");
    let stride = if long {
        1
    } else {
        calibration.ticks.div_ceil(budget.max(1)).max(1)
    };
    let mut attempts = 0;
    let mut tick = 1;
    loop {
        attempts += 1;
        let injection = attempt(Some(tick));
        if !injection.fired {
            break;
        }
        // A call that went on much longer than the calibration is stuck in
        // a retry loop: stop rather than sweep forever.
        assert!(
            tick <= calibration.ticks.saturating_mul(20) + 10_000,
            "the sweep does not end: tick {tick}, calibration {} ticks",
            calibration.ticks
        );
        tick += stride;
    }
    Swept {
        calibrated_ticks: calibration.ticks,
        stride,
        attempts,
    }
}

/// Another connection, on a thread of its own, holding `BEGIN EXCLUSIVE` on
/// a file until [`release`](Self::release) (or drop), or until `max_hold`
/// has passed, whichever comes first: a test of a library that waits too
/// long still ends.
pub struct ExclusiveHolder {
    release: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ExclusiveHolder {
    /// Returns once the lock is held.
    pub fn hold(path: &Path, max_hold: Duration) -> ExclusiveHolder {
        let path: PathBuf = path.to_owned();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let conn = Connection::open(&path).expect("holder: open");
            conn.execute_batch("BEGIN EXCLUSIVE")
                .expect("holder: BEGIN EXCLUSIVE");
            ready_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(max_hold);
            conn.execute_batch("ROLLBACK").expect("holder: ROLLBACK");
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the holder took the lock");
        ExclusiveHolder {
            release: Some(release_tx),
            thread: Some(thread),
        }
    }

    /// Ends the holder's transaction and waits for it.
    pub fn release(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the holder thread");
        }
    }
}

impl Drop for ExclusiveHolder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A tmpfs of a few hundred kilobytes mounted on a temporary directory, and
/// unmounted on drop. Mounting needs root (and a kernel that lets this
/// process mount): `mount` answers `None` when it is refused, and the caller
/// skips its test with a note.
pub struct SmallTmpfs {
    pub dir: tempfile::TempDir,
}

impl SmallTmpfs {
    pub fn mount(size_kib: u32) -> Option<SmallTmpfs> {
        let dir = tempfile::tempdir().expect("create a mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => Some(SmallTmpfs { dir }),
            _ => None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the file system is full; returns its path.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).expect("create the filler");
        let chunk = vec![0xA5_u8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file open: detach it lazily.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// A reader on another thread that a step starts: [`take`](Self::take)
/// returns once it holds a read lock on the file (in a rollback journal,
/// one that holds up a COMMIT), which it keeps for `hold`.
pub struct ReaderOnCall {
    start: Mutex<Option<mpsc::Sender<()>>>,
    taken: Mutex<mpsc::Receiver<()>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ReaderOnCall {
    pub fn spawn(path: &Path, hold: Duration) -> Arc<ReaderOnCall> {
        let (start, wanted) = mpsc::channel::<()>();
        let (say_taken, taken) = mpsc::channel::<()>();
        let path: PathBuf = path.to_owned();
        let thread = std::thread::spawn(move || {
            if wanted.recv().is_err() {
                return;
            }
            let conn = Connection::open(&path).expect("reader: open");
            conn.execute_batch("BEGIN").expect("reader: BEGIN");
            let _: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
                .expect("reader: read");
            say_taken.send(()).expect("reader: say it holds the lock");
            std::thread::sleep(hold);
            conn.execute_batch("COMMIT").expect("reader: COMMIT");
        });
        Arc::new(ReaderOnCall {
            start: Mutex::new(Some(start)),
            taken: Mutex::new(taken),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The first call starts the reader and returns once it holds its
    /// lock; later calls do nothing.
    pub fn take(&self) {
        if let Some(start) = self.start.lock().unwrap().take() {
            start.send(()).unwrap();
            self.taken.lock().unwrap().recv().unwrap();
        }
    }

    /// Waits for the reader's end (it never starts if no step asked).
    pub fn join(&self) {
        self.start.lock().unwrap().take();
        if let Some(thread) = self.thread.lock().unwrap().take() {
            thread.join().unwrap();
        }
    }
}
