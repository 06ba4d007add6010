//! Several objectives and constraints: a study's directions, telling a trial its values
//! and constraint values, and the Pareto front of the feasible trials.

use super::{Outcome, Study};
use crate::error::{Error, Result};
use crate::storage::{Direction, FrozenTrial, Op, TrialState};
use crate::tuner::pareto;
use crate::tuner::sampler::SamplerKind;

impl Study {
    /// The study with these objectives (two or more make it multi-objective; Optuna's
    /// `directions`). The GP sampler models one objective and is refused for several.
    pub fn with_directions(
        mut self,
        directions: &[Direction],
    ) -> std::result::Result<Study, String> {
        match directions {
            [] => return Err("a study needs at least one direction".into()),
            [_] => {}
            _ if self.kind == SamplerKind::Gp => {
                return Err(
                    "the gp sampler models one objective; use tpe or nsga2 for several".into(),
                )
            }
            _ => {}
        }
        self.directions = directions.to_vec();
        Ok(self)
    }

    /// Every objective's direction.
    pub fn directions(&self) -> &[Direction] {
        &self.directions
    }

    /// Finishes a trial with its constraint values (feasible when every one is ≤ 0).
    pub fn tell_constrained(
        &mut self,
        trial: usize,
        outcome: Outcome,
        constraints: &[f64],
    ) -> Result<()> {
        let (state, value) = match outcome {
            Outcome::Complete(_) if self.directions.len() > 1 => {
                return Err(Error::Run(format!(
                    "trial {trial}: this study has {} objectives; tell one value for each",
                    self.directions.len()
                )))
            }
            Outcome::Complete(v) if v.is_finite() => (TrialState::Complete, Some(v)),
            Outcome::Complete(_) | Outcome::Failed => (TrialState::Failed, None),
            Outcome::Pruned => (TrialState::Pruned, None),
        };
        self.tell_op(Op::Tell {
            trial,
            state,
            value,
            values: Vec::new(),
            constraints: constraints.to_vec(),
        })
    }

    /// Finishes a complete trial with one value per objective (and its constraint values,
    /// if any). A non-finite value records the trial failed, as Optuna does.
    pub fn tell_values(&mut self, trial: usize, values: &[f64], constraints: &[f64]) -> Result<()> {
        if values.len() != self.directions.len() {
            return Err(Error::Run(format!(
                "trial {trial}: {} values for {} objectives",
                values.len(),
                self.directions.len()
            )));
        }
        if let [v] = values {
            return self.tell_constrained(trial, Outcome::Complete(*v), constraints);
        }
        let finite = values.iter().all(|v| v.is_finite());
        self.tell_op(Op::Tell {
            trial,
            state: match finite {
                true => TrialState::Complete,
                false => TrialState::Failed,
            },
            value: None,
            values: if finite { values.to_vec() } else { Vec::new() },
            constraints: constraints.to_vec(),
        })
    }

    /// The tell, after the values staged for it, in one transaction.
    fn tell_op(&mut self, op: Op) -> Result<()> {
        let mut ops = std::mem::take(&mut self.staged);
        ops.push(op);
        self.storage
            .transact(|_| Ok((ops.clone(), ())))?
            .map_err(Error::Run)
    }

    /// The Pareto front of the feasible complete trials, in trial order (Optuna's
    /// `best_trials`); with one objective, every trial tied for the best value.
    pub fn best_trials(&mut self) -> Result<Vec<FrozenTrial>> {
        let directions = self.directions.clone();
        let trials = &self.storage.state()?.trials;
        let feasible: Vec<&FrozenTrial> = trials
            .iter()
            .filter(|t| t.violation() == 0.0 && t.objectives().is_some())
            .collect();
        let losses: Vec<Vec<f64>> = feasible
            .iter()
            .map(|t| losses(t.objectives().expect("filtered"), &directions))
            .collect();
        let front = pareto::fronts(&losses, &vec![0.0; losses.len()]);
        Ok(front
            .first()
            .map(|f| f.iter().map(|&i| feasible[i].clone()).collect())
            .unwrap_or_default())
    }
}

/// Objectives in minimisation form: maximised ones negated.
pub fn losses(values: &[f64], directions: &[Direction]) -> Vec<f64> {
    values
        .iter()
        .zip(directions)
        .map(|(&v, d)| if d.maximize() { -v } else { v })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Space;

    #[test]
    fn the_front_holds_the_feasible_non_dominated_trials() {
        let directions = [Direction::Minimize, Direction::Maximize];
        let mut study = Study::in_memory(Space::default(), SamplerKind::Random, false, 0)
            .unwrap()
            .with_directions(&directions)
            .unwrap();
        // (loss, accuracy): 0 and 1 trade off, 2 is dominated by 1, 3 is infeasible.
        let told = [
            ([1.0, 0.5], 0.0),
            ([2.0, 0.9], -1.0),
            ([2.5, 0.8], 0.0),
            ([0.1, 0.99], 3.0),
        ];
        for (values, constraint) in told {
            let t = study.ask().unwrap().number;
            study.tell_values(t, &values, &[constraint]).unwrap();
        }
        let t = study.ask().unwrap().number;
        study.tell_values(t, &[f64::NAN, 1.0], &[]).unwrap();
        let front: Vec<usize> = study
            .best_trials()
            .unwrap()
            .iter()
            .map(|t| t.number)
            .collect();
        assert_eq!(front, vec![0, 1]);
        assert_eq!(study.trials().unwrap()[4].state, TrialState::Failed);
        assert!(
            study.best().is_err(),
            "several objectives have no single best"
        );
        assert!(study.tell_values(5, &[1.0], &[]).is_err());
        assert!(study.tell(0, Outcome::Complete(1.0)).is_err());
        assert!(
            Study::in_memory(Space::default(), SamplerKind::Gp, false, 0)
                .unwrap()
                .with_directions(&directions)
                .is_err()
        );
    }
}
