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

/// The authorizer's state: armed while user code runs; `refused` records
/// that a statement was denied.
#[derive(Default)]
struct GuardState {
    armed: AtomicBool,
    refused: AtomicBool,
}

/// An SQLite authorizer that refuses transaction control while user code
/// runs. It is installed once per transaction and armed only around user
/// code: installing or removing an authorizer expires every prepared
/// statement of the connection, which would re-prepare the runner's own
/// statements at every step.
///
/// It goes through the C API rather than rusqlite's `hooks` feature, whose
/// signature changed across the rusqlite versions this crate supports. An
/// authorizer the application installed itself is replaced for the duration
/// of the run and not restored.
pub(crate) struct Guard<'c> {
    conn: &'c Connection,
    // Boxed: SQLite holds a pointer to it until `drop` removes the authorizer.
    state: Box<GuardState>,
}

impl<'c> Guard<'c> {
    pub fn install(conn: &'c Connection) -> Self {
        let state = Box::<GuardState>::default();
        // SAFETY: the handle is valid while `conn` is borrowed; the state is
        // boxed, so its address is stable, and it outlives the authorizer,
        // which `drop` removes before the box is freed.
        unsafe {
            ffi::sqlite3_set_authorizer(
                conn.handle(),
                Some(authorize),
                &*state as *const GuardState as *mut c_void,
            );
        }
        Guard { conn, state }
    }

    /// Runs one step's code with the guard armed, catching panics.
    pub fn run_step(&self, tx: &Transaction<'_>, action: &Action) -> Result<Duration, StepFailure> {
        self.state.refused.store(false, Ordering::Relaxed);
        let start = Instant::now();
        self.state.armed.store(true, Ordering::Relaxed);
        let result = catch_unwind(AssertUnwindSafe(|| match action {
            Action::Static(Body::Rust(run)) => run(tx),
            Action::Static(Body::Sql(sql)) => {
                tx.execute_batch(sql).map_err(|e| Box::new(e) as BoxError)
            }
            Action::Dynamic(run) => run(tx),
        }));
        self.state.armed.store(false, Ordering::Relaxed);
        let elapsed = start.elapsed();
        // A refused statement counts even when the step swallowed its error.
        if self.state.refused.load(Ordering::Relaxed) {
            return Err(StepFailure::TransactionControl);
        }
        match result {
            Ok(Ok(())) => Ok(elapsed),
            Ok(Err(error)) => Err(StepFailure::Returned(error)),
            Err(payload) => Err(StepFailure::Panicked(panic_message(payload.as_ref()))),
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: removing the authorizer on a valid handle, before `state`
        // is freed.
        unsafe {
            ffi::sqlite3_set_authorizer(self.conn.handle(), None, std::ptr::null_mut());
        }
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

/// SQLite calls this while it prepares each statement of the step.
unsafe extern "C" fn authorize(
    state: *mut c_void,
    action: c_int,
    _arg1: *const c_char,
    arg2: *const c_char,
    _database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    // SAFETY: `state` is the GuardState installed with this callback.
    let state = unsafe { &*(state as *const GuardState) };
    if !state.armed.load(Ordering::Relaxed) {
        return ffi::SQLITE_OK;
    }
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
        state.refused.store(true, Ordering::Relaxed);
        ffi::SQLITE_DENY
    } else {
        ffi::SQLITE_OK
    }
}
