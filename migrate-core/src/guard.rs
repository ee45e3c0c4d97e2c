//! Running user code under watch: what a migration may not do (end the
//! transaction it runs in), and what happens when it panics.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{ffi, Connection, Transaction};

use crate::private::{Body, BoxError};
use crate::registry::Action;

/// The savepoint each step runs in. User code may not release or roll back
/// to it: that would end the step's atomicity behind the runner's back.
pub(crate) const STEP_SAVEPOINT: &str = "migrate_core_step";

/// Why a step did not succeed.
pub(crate) enum StepFailure {
    Returned(BoxError),
    Panicked(String),
    TransactionControl,
}

/// Runs one step's code with the transaction guard installed, catching panics.
pub(crate) fn run_step(tx: &Transaction<'_>, action: &Action) -> Result<Duration, StepFailure> {
    let refused = AtomicBool::new(false);
    let start = Instant::now();
    let result = {
        let _guard = TransactionGuard::install(tx, &refused);
        catch_unwind(AssertUnwindSafe(|| match action {
            Action::Static(Body::Rust(run)) => run(tx),
            Action::Static(Body::Sql(sql)) => {
                tx.execute_batch(sql).map_err(|e| Box::new(e) as BoxError)
            }
            Action::Dynamic(run) => run(tx),
        }))
    };
    let elapsed = start.elapsed();
    // A refused statement counts even when the step swallowed its error.
    if refused.load(Ordering::Relaxed) {
        return Err(StepFailure::TransactionControl);
    }
    match result {
        Ok(Ok(())) => Ok(elapsed),
        Ok(Err(error)) => Err(StepFailure::Returned(error)),
        Err(payload) => Err(StepFailure::Panicked(panic_message(payload.as_ref()))),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(a panic with a non-string payload)".to_owned()
    }
}

/// An SQLite authorizer that refuses transaction control while user code
/// runs. It goes through the C API rather than rusqlite's `hooks` feature,
/// whose signature changed across the rusqlite versions we support.
///
/// An authorizer the application installed itself is replaced for the
/// duration of the migration run and not restored.
struct TransactionGuard<'a> {
    conn: &'a Connection,
}

impl<'a> TransactionGuard<'a> {
    fn install(conn: &'a Connection, refused: &'a AtomicBool) -> Self {
        // SAFETY: the handle is valid while `conn` is borrowed; the user-data
        // pointer outlives the authorizer, which `drop` removes before
        // `refused` goes out of scope (the guard borrows it for 'a).
        unsafe {
            ffi::sqlite3_set_authorizer(
                conn.handle(),
                Some(authorize),
                refused as *const AtomicBool as *mut c_void,
            );
        }
        TransactionGuard { conn }
    }
}

impl Drop for TransactionGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: removing the authorizer on a valid handle.
        unsafe {
            ffi::sqlite3_set_authorizer(self.conn.handle(), None, std::ptr::null_mut());
        }
    }
}

/// SQLite calls this while it prepares each statement of the step.
unsafe extern "C" fn authorize(
    refused: *mut c_void,
    action: c_int,
    _arg1: *const c_char,
    arg2: *const c_char,
    _database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    let deny = match action {
        ffi::SQLITE_TRANSACTION => true,
        // arg2 names the savepoint; only ours is off limits.
        ffi::SQLITE_SAVEPOINT => {
            !arg2.is_null()
                // SAFETY: SQLite passes a NUL-terminated string or NULL.
                && unsafe { CStr::from_ptr(arg2) }
                    .to_bytes()
                    .eq_ignore_ascii_case(STEP_SAVEPOINT.as_bytes())
        }
        _ => false,
    };
    if deny {
        // SAFETY: `refused` is the AtomicBool installed with this callback.
        unsafe { &*(refused as *const AtomicBool) }.store(true, Ordering::Relaxed);
        ffi::SQLITE_DENY
    } else {
        ffi::SQLITE_OK
    }
}
