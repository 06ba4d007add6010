//! Nested cross-validation (`cv: {outer: K, inner: J}`), for data too small for one
//! validation split and one test split to be trusted.
//!
//! The data is cut into K stratified outer folds. For outer fold k the tuning data is
//! everything else, cut again into J stratified inner folds; each configuration's score is
//! its validation metric averaged over the J inner folds, at the full budget (no early
//! stopping: every inner fold must see the same budget). The best configuration of outer
//! fold k is retrained on all of its tuning data and scored once on fold k, which no
//! decision ever saw. The K test scores are reported with their mean and standard
//! deviation — an estimate of what the whole tuning procedure achieves on new data.
//!
//! Every (configuration, outer fold, inner fold) is a member of one population: members see
//! their fold through a [`Fold`] view of the shared data, so the K·J copies of a
//! configuration train side by side with every other configuration (CPU backend).

use super::driver::train_fixed;
use super::{derive_seed, insert_trial, sweep_study, SEED_SPLIT};
use crate::backend::Backend;
use crate::config::Sweep;
use crate::data::{Dataset, TuningData};
use crate::error::{Error, Result};
use crate::model::Fold;
use crate::report::run_files::RunFiles;
use crate::rng::{permutation, Stream};
use crate::space::Params;
use crate::storage::Storage;
use crate::storage::{RungValue, TrialRecord, TrialState};
use crate::tuner::study::Study;
use serde::Serialize;
use std::sync::Arc;

/// One outer fold's result.
#[derive(Clone, Debug, Serialize)]
pub struct OuterFold {
    pub fold: usize,
    /// The chosen configuration's trial number and parameters.
    pub trial: usize,
    pub params: Params,
    /// Its sweep metric averaged over the inner folds.
    pub inner_val: f64,
    pub test_accuracy: f64,
    pub test_loss: f64,
    /// Rows of the outer test fold.
    pub test_rows: usize,
}

/// `summary.json` of a nested cross-validation.
#[derive(Clone, Debug, Serialize)]
pub struct CvSummary {
    pub name: String,
    pub metric: String,
    pub outer: usize,
    pub inner: usize,
    pub configurations: usize,
    pub epochs: usize,
    pub members: usize,
    pub folds: Vec<OuterFold>,
    pub test_accuracy_mean: f64,
    /// Sample standard deviation over the outer folds.
    pub test_accuracy_sd: f64,
    pub wall_seconds: f64,
}

/// Stratified assignment of `rows` (indices into `labels`) to `k` folds: each class's rows
/// shuffled by `seed`, then dealt round-robin, so every fold has each class's share.
pub fn stratified_folds(rows: &[usize], labels: &[u32], k: usize, seed: u64) -> Vec<Vec<usize>> {
    let classes = rows
        .iter()
        .map(|&r| labels[r] as usize + 1)
        .max()
        .unwrap_or(0);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for &r in rows {
        by_class[labels[r] as usize].push(r);
    }
    let mut folds = vec![Vec::new(); k];
    let mut next = 0;
    for (c, members) in by_class.iter().enumerate() {
        let order = permutation(members.len(), seed, Stream::Split, c as u32);
        for i in order {
            folds[next % k].push(members[i]);
            next += 1;
        }
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    folds
}

fn fold_view(id: usize, n: usize, train_rows: &[usize], val_rows: &[usize]) -> Arc<Fold> {
    let mut in_train = vec![false; n];
    for &r in train_rows {
        in_train[r] = true;
    }
    Arc::new(Fold {
        id,
        in_train,
        val_rows: val_rows.to_vec(),
    })
}

/// Runs the nested cross-validation of `sweep` over all of `data`.
pub fn run_nested_cv(
    sweep: &Sweep,
    data: &Dataset,
    (outer, inner): (usize, usize),
    backend: &dyn Backend,
    storage: Box<dyn Storage>,
    files: &RunFiles,
    on_fold: &mut dyn FnMut(&OuterFold),
) -> Result<CvSummary> {
    let started = std::time::Instant::now();
    let n = data.len();
    if n < outer * inner * 2 {
        return Err(Error::Run(format!(
            "nested cross-validation {outer}×{inner} needs at least {} rows; the data has {n}",
            outer * inner * 2
        )));
    }
    let split_seed = derive_seed(sweep.seed, SEED_SPLIT);
    let all: Vec<usize> = (0..n).collect();
    let strata = data.strata();
    // The same configurations in every outer fold (one batch from the sweep's sampler).
    let mut study = sweep_study(sweep, storage)?;
    let configs: Vec<(usize, Params)> = study
        .ask_batch(sweep.run_cap)?
        .into_iter()
        .map(|t| (t.number, t.params))
        .collect();
    let cv = NestedCv {
        sweep,
        data,
        tuning: TuningData {
            train: data.clone(),
            val: data.clone(),
        },
        outer_folds: stratified_folds(&all, &strata, outer, split_seed),
        strata,
        split_seed,
        inner,
        configs,
    };
    let (inner_values, members) = cv.inner_scores(backend)?;
    let mut best = Vec::new();
    for k in 0..outer {
        let (c, inner_val) = cv.choose(k, &inner_values, &mut study)?;
        best.push((k, c, inner_val));
    }
    study.sync()?;
    let folds = cv.outer_tests(&best, backend, on_fold)?;
    let accs: Vec<f64> = folds.iter().map(|f| f.test_accuracy).collect();
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    let sd = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>()
        / (accs.len() - 1).max(1) as f64)
        .sqrt();
    let summary = CvSummary {
        name: sweep.name.clone(),
        metric: sweep.metric.name.to_string(),
        outer,
        inner,
        configurations: cv.configs.len(),
        epochs: sweep.epochs,
        members,
        folds,
        test_accuracy_mean: mean,
        test_accuracy_sd: sd,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    files.write_summary(&summary)?;
    Ok(summary)
}

/// A nested cross-validation's fixed parts: the data, its outer folds, and the
/// configurations every outer fold compares.
struct NestedCv<'a> {
    sweep: &'a Sweep,
    data: &'a Dataset,
    /// The whole data as both splits: members see their folds through views of it.
    tuning: TuningData,
    outer_folds: Vec<Vec<usize>>,
    strata: Vec<u32>,
    split_seed: u64,
    inner: usize,
    configs: Vec<(usize, Params)>,
}

impl NestedCv<'_> {
    /// The rows outer fold `k` tunes on: all but its test rows.
    fn tuning_rows(&self, k: usize) -> Vec<usize> {
        let test_rows = &self.outer_folds[k];
        (0..self.data.len())
            .filter(|r| test_rows.binary_search(r).is_err())
            .collect()
    }

    /// Stage 1: every configuration × outer fold × inner fold trained as one population;
    /// each configuration's inner scores per outer fold (`[config][outer]`), and the
    /// population's size.
    #[allow(clippy::type_complexity)]
    fn inner_scores(&self, backend: &dyn Backend) -> Result<(Vec<Vec<Vec<f64>>>, usize)> {
        let (sweep, inner, n) = (self.sweep, self.inner, self.data.len());
        let mut pop = backend.population(self.data, self.data);
        let mut member_of = Vec::new(); // slot → (config index, outer, inner)
        for k in 0..self.outer_folds.len() {
            let tuning_rows = self.tuning_rows(k);
            let inner_folds = stratified_folds(
                &tuning_rows,
                &self.strata,
                inner,
                derive_seed(self.split_seed, 1 + k as u64),
            );
            for (j, val_rows) in inner_folds.iter().enumerate() {
                let train_rows: Vec<usize> = tuning_rows
                    .iter()
                    .copied()
                    .filter(|r| val_rows.binary_search(r).is_err())
                    .collect();
                let view = fold_view(k * inner + j, n, &train_rows, val_rows);
                for (c, (trial, params)) in self.configs.iter().enumerate() {
                    let slot = insert_trial(pop.as_mut(), sweep, &self.tuning, *trial, params);
                    pop.set_fold(slot, view.clone());
                    member_of.push((c, k, j));
                }
            }
        }
        train_fixed(sweep, pop.as_mut(), self.data.len(), 0, sweep.epochs)?;
        let mut inner_values = vec![vec![Vec::new(); self.outer_folds.len()]; self.configs.len()];
        for (m, &(c, k, _)) in pop.members().iter().zip(&member_of) {
            let v = if m.is_alive() {
                m.history
                    .last()
                    .and_then(|h| h.get(&sweep.metric.name))
                    .unwrap_or(f64::NAN)
            } else {
                f64::NAN
            };
            inner_values[c][k].push(v);
        }
        Ok((inner_values, pop.len()))
    }

    /// Stage 2 for outer fold `k`: each configuration's record (its mean inner score as
    /// its one rung), and the best configuration with that score.
    fn choose(
        &self,
        k: usize,
        inner_values: &[Vec<Vec<f64>>],
        study: &mut Study,
    ) -> Result<(usize, f64)> {
        let (sweep, metric) = (self.sweep, &self.sweep.metric);
        let mut chosen: Option<(usize, f64)> = None;
        for (c, (trial, params)) in self.configs.iter().enumerate() {
            let values = &inner_values[c][k];
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let state = if mean.is_finite() {
                TrialState::Complete
            } else {
                TrialState::Failed
            };
            study.record(&TrialRecord {
                number: *trial,
                outer: Some(k),
                params: params.clone(),
                state,
                epochs: sweep.epochs,
                rungs: vec![RungValue {
                    rung: 0,
                    epochs: sweep.epochs,
                    value: mean,
                }],
                inner_values: values.clone(),
                ..TrialRecord::default()
            })?;
            let better = |old: f64| {
                if metric.maximize {
                    mean > old
                } else {
                    mean < old
                }
            };
            if mean.is_finite() && chosen.is_none_or(|(_, old)| better(old)) {
                chosen = Some((c, mean));
            }
        }
        chosen
            .ok_or_else(|| Error::Run(format!("outer fold {}: every configuration failed", k + 1)))
    }

    /// Each outer fold's chosen configuration retrained on all its tuning rows (one
    /// population) and tested once on the fold's test rows.
    fn outer_tests(
        &self,
        best: &[(usize, usize, f64)],
        backend: &dyn Backend,
        on_fold: &mut dyn FnMut(&OuterFold),
    ) -> Result<Vec<OuterFold>> {
        let (sweep, n) = (self.sweep, self.data.len());
        let (outer, inner) = (self.outer_folds.len(), self.inner);
        let mut final_pop = backend.population(self.data, self.data);
        for &(k, c, _) in best {
            // No validation rows: nothing is chosen from here on, and the test fold stays
            // unseen until the single evaluation below.
            let view = fold_view(outer * inner + k, n, &self.tuning_rows(k), &[]);
            let (trial, params) = &self.configs[c];
            let slot = insert_trial(final_pop.as_mut(), sweep, &self.tuning, *trial, params);
            final_pop.set_fold(slot, view);
        }
        train_fixed(sweep, final_pop.as_mut(), self.data.len(), 0, sweep.epochs)?;
        let mut folds = Vec::new();
        for (slot, &(k, c, inner_val)) in best.iter().enumerate() {
            let test = self.data.subset(&self.outer_folds[k]);
            let (accuracy, loss) = if final_pop.members()[slot].is_alive() {
                let e = final_pop.evaluate(slot, &test)?;
                (e.accuracy, e.loss)
            } else {
                (f64::NAN, f64::NAN)
            };
            let fold = OuterFold {
                fold: k,
                trial: self.configs[c].0,
                params: self.configs[c].1.clone(),
                inner_val,
                test_accuracy: accuracy,
                test_loss: loss,
                test_rows: test.len(),
            };
            on_fold(&fold);
            folds.push(fold);
        }
        Ok(folds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_folds_partition_and_balance() {
        let labels: Vec<u32> = (0..100).map(|i| (i % 4) as u32).collect();
        let rows: Vec<usize> = (0..100).collect();
        let folds = stratified_folds(&rows, &labels, 5, 7);
        let mut all: Vec<usize> = folds.concat();
        all.sort_unstable();
        assert_eq!(all, rows, "a partition");
        for f in &folds {
            assert_eq!(f.len(), 20);
            for c in 0..4 {
                assert_eq!(f.iter().filter(|&&r| labels[r] == c).count(), 5);
            }
        }
        assert_ne!(folds, stratified_folds(&rows, &labels, 5, 8), "seeded");
    }
}
