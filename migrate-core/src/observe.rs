//! Progress reporting. Every [`Event`] goes out through one function,
//! [`emit`], to the observer callback of `Migrator::observer`, to `tracing`
//! (feature `tracing`: a span per step, events at matching levels) and to
//! `log` (feature `log`: the same events as records, their fields as text).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Direction, Error};

/// What the runner reports about each step, as it happens.
///
/// ```
/// use migrate_core::{Event, Migrator};
/// let migrator = Migrator::new().observer(|event: &Event| match event {
///     Event::Started { id, name, .. } => eprintln!("applying {id} {name}…"),
///     Event::Finished { elapsed, .. } => eprintln!("  done in {elapsed:?}"),
///     Event::Failed { error, .. } => eprintln!("  failed: {error}"),
///     _ => {}
/// });
/// # let _ = migrator;
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A step is about to run.
    Started {
        /// The migration id.
        id: u32,
        /// The migration name.
        name: &'a str,
        /// Applying or rolling back.
        direction: Direction,
    },
    /// A step ran and was recorded, in its transaction. Should that
    /// transaction then fail to commit (a lock held past the timeout, a
    /// full disk), a `Failed` event for the same step follows: nothing of
    /// it was kept.
    Finished {
        /// The migration id.
        id: u32,
        /// The migration name.
        name: &'a str,
        /// Applying or rolling back.
        direction: Direction,
        /// How long the step took, bookkeeping included.
        elapsed: Duration,
    },
    /// A step failed and was rolled back, or its transaction failed to
    /// commit after it had `Finished`.
    Failed {
        /// The migration id.
        id: u32,
        /// The migration name.
        name: &'a str,
        /// Applying or rolling back.
        direction: Direction,
        /// How long it ran before failing.
        elapsed: Duration,
        /// Why.
        error: &'a Error,
    },
    /// The schema was changed outside migrations since they last ran (with
    /// [`Drift::Warn`](crate::Drift::Warn)); the call carries on.
    Drift {
        /// Every object added, removed or changed.
        changes: &'a [crate::SchemaChange],
    },
}

/// A callback that receives every [`Event`].
pub(crate) type Observer = Arc<dyn Fn(&Event<'_>) + Send + Sync + 'static>;

/// The one place events leave the runner: the observer and every logging
/// backend compiled in see the same events, in the same order.
fn emit(observer: Option<&Observer>, event: &Event<'_>) {
    #[cfg(feature = "tracing")]
    to_tracing(event);
    #[cfg(feature = "log")]
    to_log(event);
    if let Some(observer) = observer {
        observer(event);
    }
}

/// Reports a step that ran (its `Finished` was reported) and whose
/// transaction then failed to commit: failed, with the commit's error, in
/// a `migration` span of its own (the step's ended with it).
pub(crate) fn lost(observer: Option<&Observer>, step: &crate::report::StepReport, error: &Error) {
    #[cfg(feature = "tracing")]
    let _span = tracing::info_span!(
        "migration",
        id = step.id,
        name = step.name.as_str(),
        direction = direction_label(step.direction),
        elapsed_ms = millis(step.elapsed)
    )
    .entered();
    emit(
        observer,
        &Event::Failed {
            id: step.id,
            name: &step.name,
            direction: step.direction,
            elapsed: step.elapsed,
            error,
        },
    );
}

/// Reports drift found with [`Drift::Warn`](crate::Drift::Warn): to the
/// observer, and as a warning to `tracing` and `log`.
pub(crate) fn drift(observer: Option<&Observer>, changes: &[crate::SchemaChange]) {
    emit(observer, &Event::Drift { changes });
}

/// Watches one step from start to end: emits its events, and holds the
/// step's tracing span open while it runs.
pub(crate) struct StepWatch<'a> {
    observer: Option<&'a Observer>,
    id: u32,
    name: &'a str,
    direction: Direction,
    start: Instant,
    #[cfg(feature = "tracing")]
    span: tracing::span::EnteredSpan,
}

impl<'a> StepWatch<'a> {
    pub fn start(
        observer: Option<&'a Observer>,
        id: u32,
        name: &'a str,
        direction: Direction,
    ) -> Self {
        // The span first, so that the step's events (`started` included)
        // are inside it.
        #[cfg(feature = "tracing")]
        let span = tracing::info_span!(
            "migration",
            id,
            name,
            direction = direction_label(direction),
            elapsed_ms = tracing::field::Empty
        )
        .entered();
        emit(
            observer,
            &Event::Started {
                id,
                name,
                direction,
            },
        );
        StepWatch {
            observer,
            id,
            name,
            direction,
            start: Instant::now(),
            #[cfg(feature = "tracing")]
            span,
        }
    }

    pub fn finished(self) {
        let elapsed = self.start.elapsed();
        #[cfg(feature = "tracing")]
        self.span.record("elapsed_ms", millis(elapsed));
        emit(
            self.observer,
            &Event::Finished {
                id: self.id,
                name: self.name,
                direction: self.direction,
                elapsed,
            },
        );
    }

    pub fn failed(self, error: &Error) {
        let elapsed = self.start.elapsed();
        #[cfg(feature = "tracing")]
        self.span.record("elapsed_ms", millis(elapsed));
        emit(
            self.observer,
            &Event::Failed {
                id: self.id,
                name: self.name,
                direction: self.direction,
                elapsed,
                error,
            },
        );
    }
}

/// An event as `tracing` sees it: the step's id, name and direction are
/// fields of the enclosing `migration` span.
#[cfg(feature = "tracing")]
fn to_tracing(event: &Event<'_>) {
    match event {
        Event::Started { .. } => tracing::debug!("migration step started"),
        Event::Finished { elapsed, .. } => {
            tracing::info!(elapsed_ms = millis(*elapsed), "migration step finished");
        }
        Event::Failed { elapsed, error, .. } => {
            tracing::error!(elapsed_ms = millis(*elapsed), error = %error, "migration step failed");
        }
        Event::Drift { changes } => {
            for change in *changes {
                tracing::warn!(
                    change = %change.summary("when migrations last ran", "now"),
                    "schema changed outside migrations"
                );
            }
        }
    }
}

/// An event as a `log` record, at the level `tracing` uses for it: `log`
/// has no spans, so each record carries the step's fields, as
/// `key=value` text after the message that `tracing` uses.
#[cfg(feature = "log")]
fn to_log(event: &Event<'_>) {
    const TARGET: &str = "migrate_core";
    match *event {
        Event::Started {
            id,
            name,
            direction,
        } => log::debug!(
            target: TARGET,
            "migration step started: id={id} name={name} direction={}",
            direction_label(direction)
        ),
        Event::Finished {
            id,
            name,
            direction,
            elapsed,
        } => log::info!(
            target: TARGET,
            "migration step finished: id={id} name={name} direction={} elapsed_ms={:.3}",
            direction_label(direction),
            millis(elapsed)
        ),
        Event::Failed {
            id,
            name,
            direction,
            elapsed,
            error,
        } => log::error!(
            target: TARGET,
            "migration step failed: id={id} name={name} direction={} elapsed_ms={:.3} error={error:#}",
            direction_label(direction),
            millis(elapsed)
        ),
        Event::Drift { changes } => {
            for change in changes {
                log::warn!(
                    target: TARGET,
                    "schema changed outside migrations: {}",
                    change.summary("when migrations last ran", "now")
                );
            }
        }
    }
}

#[cfg(any(feature = "tracing", feature = "log"))]
fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e3
}

#[cfg(any(feature = "tracing", feature = "log"))]
fn direction_label(direction: Direction) -> &'static str {
    match direction {
        Direction::Up => "up",
        Direction::Down => "down",
    }
}
