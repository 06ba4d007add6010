//! TPE for several objectives (Optuna's multi-objective TPE, Ozaki et al. 2020/2022): the
//! good group (⌈0.1·n⌉ trials) is the best non-dominated fronts, the front that does not
//! fit whole cut by greedy hypervolume subset selection.

use super::History;
use crate::storage::{Direction, FrozenTrial, TrialState};
use crate::tuner::pareto;

/// The losses (maximised objectives negated) of a complete trial.
fn losses(t: &FrozenTrial, directions: &[Direction]) -> Option<Vec<f64>> {
    Some(crate::tuner::study::losses(t.objectives()?, directions))
}

/// The good trials of a multi-objective history, chosen as Optuna chooses them:
/// `n_below` from the feasible complete trials by front, then the least infeasible.
/// Numbers, in the order chosen (best fronts first).
pub(super) fn good_trials(history: &History<'_>, n_below: usize) -> Vec<usize> {
    let directions = history.directions;
    let mut feasible: Vec<(&FrozenTrial, Vec<f64>)> = Vec::new();
    let mut infeasible: Vec<(&FrozenTrial, f64)> = Vec::new();
    for t in history.all().filter(|t| t.state == TrialState::Complete) {
        let Some(l) = losses(t, directions) else {
            continue;
        };
        match t.violation() {
            v if v > 0.0 => infeasible.push((t, v)),
            _ => feasible.push((t, l)),
        }
    }
    let points: Vec<Vec<f64>> = feasible.iter().map(|(_, l)| l.clone()).collect();
    let mut chosen = Vec::with_capacity(n_below);
    for front in pareto::fronts(&points, &vec![0.0; points.len()]) {
        let room = n_below - chosen.len();
        if room == 0 {
            break;
        }
        if front.len() <= room {
            chosen.extend(front.iter().map(|&i| feasible[i].0.number));
            continue;
        }
        let front_points: Vec<&[f64]> = front.iter().map(|&i| &points[i][..]).collect();
        let reference = pareto::reference_point(&front_points);
        let picked = match reference.iter().all(|r| r.is_finite()) {
            true => pareto::select_by_hypervolume(&front_points, room, &reference),
            false => (0..room).collect(),
        };
        chosen.extend(picked.into_iter().map(|k| feasible[front[k]].0.number));
        break;
    }
    infeasible.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.number.cmp(&b.0.number)));
    let room = n_below - chosen.len();
    chosen.extend(infeasible.iter().take(room).map(|(t, _)| t.number));
    chosen
}
