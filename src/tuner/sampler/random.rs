//! Independent uniform sampling (log-uniform where the distribution says so).

use super::Sampler;
use crate::space::{Distribution, ParamValue, Params, Space};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Draws every parameter independently. ChaCha8 is used rather than `StdRng` because its
/// stream is fixed by its specification, so a seed gives the same suggestions across
/// versions of `rand`.
pub struct RandomSampler {
    rng: ChaCha8Rng,
}

impl RandomSampler {
    pub fn new(seed: u64) -> Self {
        RandomSampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn sample(&mut self, dist: &Distribution) -> ParamValue {
        match dist {
            Distribution::Float { low, high, log } => {
                let u: f64 = self.rng.random();
                let x = if *log {
                    (low.ln() + u * (high.ln() - low.ln())).exp()
                } else {
                    low + u * (high - low)
                };
                // exp(ln(x)) can land one ulp outside the bounds.
                ParamValue::Float(x.clamp(*low, *high))
            }
            Distribution::Int { low, high } => ParamValue::Int(self.rng.random_range(*low..=*high)),
            Distribution::Categorical { choices } => {
                choices[self.rng.random_range(0..choices.len())].clone()
            }
        }
    }
}

impl Sampler for RandomSampler {
    fn ask_batch(&mut self, space: &Space, n: usize) -> Vec<Params> {
        (0..n)
            .map(|_| {
                space
                    .params
                    .iter()
                    .map(|(name, dist)| (name.clone(), self.sample(dist)))
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Space {
        let mut space = Space::default();
        space.params.insert(
            "lr".into(),
            Distribution::Float {
                low: 1e-4,
                high: 1.0,
                log: true,
            },
        );
        space
            .params
            .insert("depth".into(), Distribution::Int { low: 1, high: 3 });
        space.params.insert(
            "act".into(),
            Distribution::Categorical {
                choices: vec![ParamValue::Str("relu".into()), ParamValue::Int(4)],
            },
        );
        space
    }

    #[test]
    fn random_same_seed_same_suggestions_all_inside() {
        let s = space();
        let a = RandomSampler::new(5).ask_batch(&s, 200);
        assert_eq!(a, RandomSampler::new(5).ask_batch(&s, 200));
        assert_ne!(a, RandomSampler::new(6).ask_batch(&s, 200));
        for params in &a {
            for (name, dist) in &s.params {
                assert!(dist.contains(&params[name]), "{name}: {:?}", params[name]);
            }
        }
    }

    #[test]
    fn log_uniform_puts_half_the_mass_below_the_geometric_mean() {
        let s = space();
        let draws = RandomSampler::new(1).ask_batch(&s, 4000);
        let below = draws
            .iter()
            .filter(|p| p["lr"].as_f64().unwrap() < 1e-2)
            .count() as f64;
        assert!((below / 4000.0 - 0.5).abs() < 0.03, "{below}");
    }
}
