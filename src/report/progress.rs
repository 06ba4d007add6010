//! The progress line of a sweep: trials done of the total, the best value so far, and an
//! ETA from the work done so far (member-epochs for bracket schedules, where the total is
//! known in advance; finished trials otherwise).

use std::time::Instant;

pub struct SweepProgress {
    started: Instant,
    maximize: bool,
    trials_total: usize,
    trials_done: usize,
    /// Work planned and done, in whatever unit the schedule knows its total in.
    work_total: f64,
    work_done: f64,
    /// Work done inside the current rung, not yet counted by `advance` (for the ETA).
    work_partial: f64,
    best: Option<(usize, f64)>,
    /// The best value shown at any epoch, said as the schedule knows it.
    seen: Option<String>,
}

impl SweepProgress {
    /// `work_total`: the planned member-epochs, or `None` to estimate from trials.
    pub fn new(trials_total: usize, work_total: Option<f64>, maximize: bool) -> Self {
        SweepProgress {
            started: Instant::now(),
            maximize,
            trials_total,
            trials_done: 0,
            work_total: work_total.unwrap_or(trials_total as f64),
            work_done: 0.0,
            work_partial: 0.0,
            best: None,
            seen: None,
        }
    }

    /// Sets the best value any trial has shown so far, at whatever epoch (finished or
    /// not), as said in the line.
    pub fn seen(&mut self, text: Option<String>) {
        self.seen = text;
    }

    /// Records `trials` newly finished and `work` newly done (member-epochs; ignored when
    /// the total was given in trials).
    pub fn advance(&mut self, trials: usize, work: f64, by_trials: bool) {
        self.trials_done += trials;
        self.work_done += if by_trials { trials as f64 } else { work };
        self.work_partial = 0.0;
    }

    /// Records `work` done so far inside a rung that has not closed yet.
    pub fn partial(&mut self, work: f64) {
        self.work_partial = work;
    }

    /// Offers a finished trial's value as the best so far.
    pub fn offer(&mut self, trial: usize, value: f64) {
        let better = match self.best {
            None => value.is_finite(),
            Some((_, b)) => value.is_finite() && if self.maximize { value > b } else { value < b },
        };
        if better {
            self.best = Some((trial, value));
        }
    }

    /// `[done/total trials] best complete <metric> v (trial n) | ETA t`: under successive
    /// halving no trial is complete before the last rung, whatever the rung leaders show.
    pub fn line(&self, metric: &str) -> String {
        let best = self.best.map_or("none yet".to_string(), |(t, v)| {
            format!("{v:.4} (trial {t})")
        });
        let done = self.work_done + self.work_partial;
        let eta = if done > 0.0 {
            let rate = self.started.elapsed().as_secs_f64() / done;
            format_seconds(rate * (self.work_total - done).max(0.0))
        } else {
            "?".into()
        };
        let seen = self
            .seen
            .as_ref()
            .map_or(String::new(), |s| format!(" | seen {s}"));
        format!(
            "[{}/{} trials] best complete {metric} {best}{seen} | ETA {eta}",
            self.trials_done, self.trials_total
        )
    }
}

/// `42s`, `3m05s`, `1h02m`.
pub fn format_seconds(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_keeps_the_best_and_formats() {
        let mut p = SweepProgress::new(10, Some(100.0), true);
        assert!(p
            .line("acc")
            .contains("[0/10 trials] best complete acc none yet | ETA ?"));
        p.advance(3, 50.0, false);
        p.offer(4, 0.9);
        p.offer(7, 0.8);
        p.offer(8, f64::NAN);
        let line = p.line("acc");
        assert!(
            line.starts_with("[3/10 trials] best complete acc 0.9000 (trial 4) | ETA "),
            "{line}"
        );
        assert_eq!(format_seconds(185.0), "3m05s");
        assert_eq!(format_seconds(3720.0), "1h02m");
        assert_eq!(format_seconds(4.4), "4s");
    }
}
