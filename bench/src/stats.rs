//! Samples and their statistics: timing one call, medians, ratios to a floor.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::contenders::{Contender, Workload};
use crate::Result;

/// Times `f` with `Instant`.
pub(crate) fn timed(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

/// The samples of a run, by (workload, N, contender).
#[derive(Default, Debug)]
pub struct Samples {
    /// Every measured duration.
    pub times: BTreeMap<(Workload, usize, Contender), Vec<Duration>>,
}

impl Samples {
    pub(crate) fn push(
        &mut self,
        workload: Workload,
        n: usize,
        contender: Contender,
        time: Duration,
    ) {
        self.times
            .entry((workload, n, contender))
            .or_default()
            .push(time);
    }

    /// The median of a series, if it was measured.
    pub fn median(&self, workload: Workload, n: usize, contender: Contender) -> Option<Duration> {
        let mut times = self.times.get(&(workload, n, contender))?.clone();
        if times.is_empty() {
            return None;
        }
        times.sort();
        let mid = times.len() / 2;
        Some(if times.len() % 2 == 1 {
            times[mid]
        } else {
            (times[mid - 1] + times[mid]) / 2
        })
    }

    /// A contender's median divided by its floor's.
    pub fn ratio(&self, workload: Workload, n: usize, contender: Contender) -> Option<f64> {
        let own = self.median(workload, n, contender)?;
        let floor = self.median(workload, n, contender.floor(workload))?;
        Some(own.as_secs_f64() / floor.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_ratio() {
        let mut s = Samples::default();
        for ms in [5, 1, 3, 100] {
            s.push(
                Workload::Apply,
                1,
                Contender::FloorB,
                Duration::from_millis(ms),
            );
        }
        for ms in [8, 8, 9] {
            s.push(
                Workload::Apply,
                1,
                Contender::MigrateCoreAdd,
                Duration::from_millis(ms),
            );
        }
        assert_eq!(
            s.median(Workload::Apply, 1, Contender::FloorB),
            Some(Duration::from_millis(4))
        );
        let r = s
            .ratio(Workload::Apply, 1, Contender::MigrateCoreAdd)
            .unwrap();
        assert!((r - 2.0).abs() < 1e-9);
    }
}
