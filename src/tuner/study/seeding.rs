//! Warm starts: earlier trials added to a study and configurations queued to be asked
//! first (Optuna's `add_trials` and `enqueue_trial`), once per study.

use super::Study;
use crate::error::{Error, Result};
use crate::space::Params;
use crate::storage::{FrozenTrial, Op, TrialState};

impl Study {
    /// Adds the finished trials of `earlier` (complete and pruned, renumbered from 0,
    /// with their values and intermediate values) and queues `first`, only into a study
    /// that has no trial and nothing queued yet: a resumed run, whose storage holds them
    /// already or re-derives them, does not add them twice. Returns how many trials it
    /// added (`None`: the study was not fresh).
    pub fn seed_once(
        &mut self,
        earlier: &[FrozenTrial],
        first: &[Params],
    ) -> Result<Option<usize>> {
        self.storage
            .transact(|state| {
                if !state.trials.is_empty() || !state.queue.is_empty() {
                    return Ok((vec![], None));
                }
                let finished = earlier
                    .iter()
                    .filter(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned));
                let mut ops = Vec::new();
                let mut added = 0;
                for (number, t) in finished.enumerate() {
                    ops.push(Op::Ask {
                        trial: number,
                        params: t.params.clone(),
                        enqueued: false,
                    });
                    ops.extend(t.intermediate.iter().map(|&(step, value)| Op::Report {
                        trial: number,
                        step,
                        value,
                    }));
                    ops.push(Op::Tell {
                        trial: number,
                        state: t.state,
                        value: t.value,
                        values: t.values.clone(),
                        constraints: t.constraints.clone(),
                    });
                    added += 1;
                }
                ops.extend(first.iter().map(|p| Op::Enqueue {
                    params: p.clone(),
                    retry: false,
                }));
                Ok((ops, Some(added)))
            })?
            .map_err(Error::Run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::ParamValue;
    use crate::tuner::sampler::SamplerKind;
    use crate::tuner::study::Outcome;

    #[test]
    fn earlier_trials_and_the_queue_seed_a_fresh_study_once() {
        let space = crate::config::parse_space(
            r#"{"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}}"#,
            "space",
        )
        .unwrap();
        let mut old = Study::in_memory(space.clone(), SamplerKind::Random, false, 1).unwrap();
        for i in 0..4 {
            let t = old.ask().unwrap().number;
            match i {
                3 => old.tell(t, Outcome::Failed),
                _ => old.tell(t, Outcome::Complete(i as f64)),
            }
            .unwrap();
        }
        let earlier = old.trials().unwrap();
        let mut first = Params::new();
        first.insert("x".into(), ParamValue::Float(0.5));
        let mut study = Study::in_memory(space, SamplerKind::Tpe, false, 2).unwrap();
        assert_eq!(
            study.seed_once(&earlier, &[first.clone()]).unwrap(),
            Some(3),
            "the failed trial is not added"
        );
        assert_eq!(study.seed_once(&earlier, &[first.clone()]).unwrap(), None);
        let next = study.ask().unwrap();
        assert_eq!((next.number, &next.params), (3, &first));
        assert_eq!(study.best().unwrap().unwrap().value, Some(0.0));
    }
}
