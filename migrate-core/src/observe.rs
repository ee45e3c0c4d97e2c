//! Progress reporting: the observer callback of `Migrator::observer`, and
//! `tracing` spans and events (feature `tracing`).

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
    /// A step ran and was recorded.
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
    /// A step failed and was rolled back.
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

/// Reports drift found with [`Drift::Warn`](crate::Drift::Warn): to the
/// observer, and as a `tracing` warning.
pub(crate) fn drift(observer: Option<&Observer>, changes: &[crate::SchemaChange]) {
    #[cfg(feature = "tracing")]
    for change in changes {
        tracing::warn!(
            change = %change.summary("when migrations last ran", "now"),
            "schema changed outside migrations"
        );
    }
    if let Some(observer) = observer {
        observer(&Event::Drift { changes });
    }
}

/// Watches one step from start to end: tells the observer, and holds the
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
        if let Some(observer) = observer {
            observer(&Event::Started {
                id,
                name,
                direction,
            });
        }
        StepWatch {
            observer,
            id,
            name,
            direction,
            start: Instant::now(),
            #[cfg(feature = "tracing")]
            span: tracing::info_span!(
                "migration",
                id,
                name,
                direction = direction_label(direction),
                elapsed_ms = tracing::field::Empty
            )
            .entered(),
        }
    }

    pub fn finished(self) {
        let elapsed = self.start.elapsed();
        #[cfg(feature = "tracing")]
        {
            self.span.record("elapsed_ms", elapsed.as_secs_f64() * 1e3);
            tracing::info!(
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "migration step finished"
            );
        }
        if let Some(observer) = self.observer {
            observer(&Event::Finished {
                id: self.id,
                name: self.name,
                direction: self.direction,
                elapsed,
            });
        }
    }

    pub fn failed(self, error: &Error) {
        let elapsed = self.start.elapsed();
        #[cfg(feature = "tracing")]
        {
            self.span.record("elapsed_ms", elapsed.as_secs_f64() * 1e3);
            tracing::error!(elapsed_ms = elapsed.as_secs_f64() * 1e3, error = %error, "migration step failed");
        }
        if let Some(observer) = self.observer {
            observer(&Event::Failed {
                id: self.id,
                name: self.name,
                direction: self.direction,
                elapsed,
                error,
            });
        }
    }
}

#[cfg(feature = "tracing")]
fn direction_label(direction: Direction) -> &'static str {
    match direction {
        Direction::Up => "up",
        Direction::Down => "down",
    }
}
