//! Population-based training (Jaderberg et al. 2017): every `interval` epochs the members
//! are ranked; each member of the bottom quantile *exploits* — takes the weights and
//! optimizer state of a member drawn uniformly from the top quantile — and then *explores*:
//! each tunable continuous hyperparameter is multiplied by 0.8 or 1.2, or, with probability
//! `resample_probability`, drawn afresh from the search space.

use super::{rank, Arrival, Decision, Scheduler, Score};
use crate::space::transform::from_unit;
use crate::space::{Distribution, ParamValue, Params, Space};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pbt {
    /// Epochs between exploit/explore rounds.
    pub interval: usize,
    /// Fraction of the population in the top and in the bottom group (at most 0.5).
    pub quantile: f64,
    pub resample_probability: f64,
}

impl Pbt {
    /// `(bottom member, top member it copies)` pairs from members ranked best first (indices
    /// into whatever the caller ranked). The two groups never overlap, so no member copies
    /// itself; a population of one has nothing to exploit.
    pub fn exploit_pairs(&self, ranked: &[usize], rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
        let n = ranked.len();
        let q = ((n as f64 * self.quantile).floor() as usize).min(n / 2);
        let q = if n >= 2 { q.max(1) } else { 0 };
        ranked[n - q..]
            .iter()
            .map(|&dst| (dst, ranked[rng.random_range(0..q)]))
            .collect()
    }

    /// New hyperparameters from `params`: every parameter for which `tunable` holds is
    /// perturbed (floats ×0.8 or ×1.2 within their bounds, integers and categories kept) or
    /// resampled; the rest are kept as they are (e.g. architecture, which the copied
    /// weights fix).
    pub fn explore(
        &self,
        params: &Params,
        space: &Space,
        tunable: impl Fn(&str) -> bool,
        rng: &mut ChaCha8Rng,
    ) -> Params {
        let mut out = params.clone();
        for def in &space.params {
            let Some(current) = params.get(&def.name) else {
                continue;
            };
            if !tunable(&def.name) {
                continue;
            }
            let value = if rng.random::<f64>() < self.resample_probability {
                from_unit(&def.dist, rng.random::<f64>())
            } else {
                let factor = if rng.random::<bool>() { 1.2 } else { 0.8 };
                match (&def.dist, current) {
                    (
                        Distribution::Float {
                            low, high, step, ..
                        },
                        ParamValue::Float(x),
                    ) => {
                        let mut y = (x * factor).clamp(*low, *high);
                        if let Some(step) = step {
                            y = (low + ((y - low) / step).round() * step).clamp(*low, *high);
                        }
                        ParamValue::Float(y)
                    }
                    _ => current.clone(),
                }
            };
            out.insert(def.name.clone(), value);
        }
        out
    }
}

/// PBT as a [`Scheduler`]: the settings, the space explore draws from, which knobs it may
/// change, and its random stream (which a checkpoint keeps, so a resumed sweep draws on).
#[derive(Clone, Debug)]
pub struct PbtScheduler {
    pub settings: Pbt,
    pub max_budget: usize,
    space: Space,
    /// Whether explore may change a knob: not the architecture, which the copied weights
    /// were trained through, nor the optimizer, whose copied state would mean something
    /// else.
    tunable: fn(&str) -> bool,
    rng: ChaCha8Rng,
}

impl PbtScheduler {
    pub fn new(
        settings: Pbt,
        max_budget: usize,
        space: Space,
        tunable: fn(&str) -> bool,
        rng: ChaCha8Rng,
    ) -> Self {
        PbtScheduler {
            settings,
            max_budget,
            space,
            tunable,
            rng,
        }
    }
}

impl Scheduler for PbtScheduler {
    fn name(&self) -> &'static str {
        "pbt"
    }

    fn max_budget(&self) -> Option<usize> {
        Some(self.max_budget)
    }

    fn synchronous(&self) -> bool {
        true
    }

    fn is_rung(&self, _trial: usize, _epochs: usize) -> bool {
        false
    }

    /// A round: the arrivals below the full budget on a multiple of `interval` are ranked
    /// (in arrival order on ties); each of the bottom quantile gets `Exploit { from }` (a
    /// top-quantile trial) then `Explore { params }` (the source's hyperparameters,
    /// perturbed or resampled). Every other arrival continues; a failed one stops.
    fn decide(&mut self, arrivals: &[Arrival<'_>], maximize: bool) -> Vec<(usize, Decision)> {
        let interval = self.settings.interval;
        let ready: Vec<usize> = (0..arrivals.len())
            .filter(|&i| {
                let a = &arrivals[i];
                a.score.is_some()
                    && a.epochs() < self.max_budget
                    && a.epochs().is_multiple_of(interval)
            })
            .collect();
        let scores: Vec<Option<Score>> = ready.iter().map(|&i| arrivals[i].score).collect();
        let ranked: Vec<usize> = rank(&scores, maximize)
            .into_iter()
            .map(|i| ready[i])
            .collect();
        let mut moved = Vec::new();
        for (dst, src) in self.settings.exploit_pairs(&ranked, &mut self.rng) {
            let from = arrivals[src].trial;
            let params = self.settings.explore(
                arrivals[src].params,
                &self.space,
                self.tunable,
                &mut self.rng,
            );
            moved.push((arrivals[dst].trial, Decision::Exploit { from }));
            moved.push((arrivals[dst].trial, Decision::Explore { params }));
        }
        let mut decisions: Vec<(usize, Decision)> = arrivals
            .iter()
            .filter(|a| !moved.iter().any(|(t, _)| *t == a.trial))
            .map(|a| (a.trial, Decision::keep(a.score.is_some())))
            .collect();
        decisions.extend(moved);
        decisions
    }

    fn rng_mut(&mut self) -> Option<&mut ChaCha8Rng> {
        Some(&mut self.rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_space;
    use rand::SeedableRng;

    #[test]
    fn bottom_copies_top_and_never_itself() {
        let pbt = Pbt {
            interval: 2,
            quantile: 0.25,
            resample_probability: 0.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ranked: Vec<usize> = vec![7, 3, 5, 0, 1, 2, 4, 6];
        for _ in 0..50 {
            let pairs = pbt.exploit_pairs(&ranked, &mut rng);
            assert_eq!(pairs.len(), 2);
            for (dst, src) in pairs {
                assert!([4, 6].contains(&dst) && [7, 3].contains(&src) && dst != src);
            }
        }
        assert!(pbt.exploit_pairs(&[9], &mut rng).is_empty());
        assert_eq!(pbt.exploit_pairs(&[1, 2], &mut rng), vec![(2, 1)]);
    }

    #[test]
    fn explore_perturbs_within_bounds_and_keeps_the_rest() {
        let space = parse_space(
            "lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}\nwidth: {values: [32, 64]}\n",
            "space.yaml",
        )
        .unwrap();
        let pbt = Pbt {
            interval: 2,
            quantile: 0.25,
            resample_probability: 0.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut params = Params::new();
        params.insert("lr".into(), ParamValue::Float(0.05));
        params.insert("width".into(), ParamValue::Int(64));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let p = pbt.explore(&params, &space, |n| n == "lr", &mut rng);
            let lr = p["lr"].as_f64().unwrap();
            assert!((lr - 0.04).abs() < 1e-12 || (lr - 0.06).abs() < 1e-12);
            assert_eq!(p["width"], ParamValue::Int(64));
            seen.insert((lr * 1000.0).round() as i64);
        }
        assert_eq!(seen.len(), 2, "both directions occur");
        params.insert("lr".into(), ParamValue::Float(0.095));
        let up = (0..20)
            .map(|_| {
                pbt.explore(&params, &space, |_| true, &mut rng)["lr"]
                    .as_f64()
                    .unwrap()
            })
            .fold(0.0, f64::max);
        assert!(up <= 0.1, "clamped to the space's bound");
    }
}
