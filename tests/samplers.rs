//! The sampler contract, over a table of every sampler: same seed ⇒ same suggestions,
//! different seed ⇒ different ones, every suggestion a valid assignment of its space
//! (inside every distribution, conditional parameters present exactly when active),
//! `ask_batch(n)` gives `n` distinct trials, and grid enumerates exactly the product.

use popsweep::space::prior::Shape;
use popsweep::space::{Condition, Distribution, ParamDef, ParamValue, Params, Space};
use popsweep::tuner::sampler::SamplerKind;
use popsweep::tuner::study::{Outcome, Study};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MODEL_FREE: [SamplerKind; 2] = [SamplerKind::Random, SamplerKind::Sobol];
const MODEL_BASED: [SamplerKind; 4] = [
    SamplerKind::Tpe,
    SamplerKind::TpeUnivariate,
    SamplerKind::TpeWatanabe,
    SamplerKind::Gp,
];

/// A random space mixing every distribution kind, with one or two conditional parameters,
/// and always one continuous parameter (so distinctness is expected).
fn random_space(rng: &mut ChaCha8Rng) -> Space {
    let mut defs = vec![ParamDef {
        name: "x0".into(),
        dist: Distribution::Float {
            low: -5.0,
            high: 5.0,
            log: false,
            step: None,
        },
        condition: None,
    }];
    for i in 1..rng.random_range(3..8) {
        let dist = match rng.random_range(0..8) {
            0 => Distribution::Float {
                low: 1e-5,
                high: 10f64.powi(rng.random_range(-2..3)),
                log: true,
                step: None,
            },
            1 => Distribution::Float {
                low: 0.0,
                high: 2.0,
                log: false,
                step: Some(0.25),
            },
            2 => Distribution::Int {
                low: -3,
                high: rng.random_range(-3..20),
                log: false,
                step: 1,
            },
            3 => Distribution::Int {
                low: 1,
                high: 1024,
                log: true,
                step: 1,
            },
            4 => Distribution::Int {
                low: 0,
                high: 30,
                log: false,
                step: 3,
            },
            5 => Distribution::Shaped {
                shape: Shape::Normal {
                    mu: rng.random_range(-3.0..3.0),
                    sigma: 0.5,
                },
                q: Some(0.5),
                int: false,
            },
            6 => Distribution::Shaped {
                shape: Shape::Beta { a: 2.0, b: 3.0 },
                q: None,
                int: false,
            },
            _ => {
                let k = rng.random_range(1..5);
                // W&B's probabilities on about half of them, now and then a zero among them.
                let weights = rng.random_bool(0.5).then(|| {
                    let w: Vec<f64> = (0..k).map(|_| rng.random_range(0..3) as f64).collect();
                    let sum: f64 = w.iter().sum();
                    w.iter()
                        .map(|x| if sum > 0.0 { x / sum } else { 1.0 / k as f64 })
                        .collect()
                });
                Distribution::Categorical {
                    choices: (0..k).map(|k| ParamValue::Str(format!("c{k}"))).collect(),
                    weights,
                }
            }
        };
        defs.push(ParamDef {
            name: format!("x{i}"),
            dist,
            condition: None,
        });
    }
    defs.push(ParamDef {
        name: "mode".into(),
        dist: Distribution::Categorical {
            choices: vec!["a".into(), "b".into()],
            weights: None,
        },
        condition: None,
    });
    defs.push(ParamDef {
        name: "only_b".into(),
        dist: Distribution::Float {
            low: 0.1,
            high: 100.0,
            log: true,
            step: None,
        },
        condition: Some(Condition {
            parent: "mode".into(),
            values: vec!["b".into()],
        }),
    });
    defs.push(ParamDef {
        name: "only_b_int".into(),
        dist: Distribution::Int {
            low: 1,
            high: 8,
            log: false,
            step: 1,
        },
        condition: Some(Condition {
            parent: "only_b".into(),
            values: vec![],
        }),
    });
    Space::new(defs).unwrap()
}

/// A deterministic objective over any assignment.
fn objective(params: &Params) -> f64 {
    params
        .iter()
        .map(|(name, v)| {
            let x = match v {
                ParamValue::Str(s) => s.len() as f64,
                ParamValue::Bool(b) => f64::from(u8::from(*b)),
                other => other.as_f64().unwrap(),
            };
            (x - name.len() as f64).powi(2).ln_1p()
        })
        .sum()
}

/// Runs `rounds` batches of `batch` asks and tells; returns every suggestion.
fn run(kind: SamplerKind, space: &Space, seed: u64, rounds: usize, batch: usize) -> Vec<Params> {
    let mut study = Study::in_memory(space.clone(), kind, false, seed).unwrap();
    let mut all = Vec::new();
    for _ in 0..rounds {
        let trials = study.ask_batch(batch).unwrap();
        assert_eq!(trials.len(), batch);
        for t in trials {
            space
                .check(&t.params)
                .unwrap_or_else(|e| panic!("{kind:?}: {e} in {:?}", t.params));
            study
                .tell(t.number, Outcome::Complete(objective(&t.params)))
                .unwrap();
            all.push(t.params);
        }
    }
    all
}

fn distinct(batch: &[Params]) -> bool {
    batch
        .iter()
        .enumerate()
        .all(|(i, p)| !batch[..i].contains(p))
}

#[test]
fn every_sampler_is_seeded_valid_and_gives_distinct_batches() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for case in 0..6 {
        let space = random_space(&mut rng);
        for kind in MODEL_FREE.iter().chain(&MODEL_BASED) {
            let a = run(*kind, &space, 7, 4, 6);
            assert_eq!(
                a,
                run(*kind, &space, 7, 4, 6),
                "{kind:?} case {case}: same seed"
            );
            assert_ne!(
                a,
                run(*kind, &space, 8, 4, 6),
                "{kind:?} case {case}: other seed"
            );
            for batch in a.chunks(6) {
                assert!(
                    distinct(batch),
                    "{kind:?} case {case}: repeated suggestion in {batch:?}"
                );
            }
        }
    }
}

#[test]
fn conditional_parameters_appear_exactly_when_active() {
    let space = random_space(&mut ChaCha8Rng::seed_from_u64(5));
    for kind in MODEL_FREE.iter().chain(&MODEL_BASED) {
        let all = run(*kind, &space, 1, 5, 8);
        let with_b = all.iter().filter(|p| p["mode"] == "b".into()).count();
        assert!(
            with_b > 0 && with_b < all.len(),
            "{kind:?}: both branches should be explored"
        );
        for p in &all {
            assert_eq!(
                p.contains_key("only_b"),
                p["mode"] == "b".into(),
                "{kind:?}"
            );
            // Condition with an empty value list: never active.
            assert!(!p.contains_key("only_b_int"));
        }
    }
}

#[test]
fn grid_enumerates_exactly_the_product() {
    let choices = |k: usize| Distribution::Categorical {
        choices: (0..k as i64).map(ParamValue::Int).collect(),
        weights: None,
    };
    let space = Space::new(
        [("a", 3), ("b", 2), ("c", 4)]
            .iter()
            .map(|&(name, k)| ParamDef {
                name: name.into(),
                dist: choices(k),
                condition: None,
            })
            .collect(),
    )
    .unwrap();
    let mut study = Study::in_memory(space.clone(), SamplerKind::Grid, false, 0).unwrap();
    let points: Vec<Params> = study
        .ask_batch(24)
        .unwrap()
        .into_iter()
        .map(|t| t.params)
        .collect();
    assert!(distinct(&points));
    for a in 0..3 {
        for b in 0..2 {
            for c in 0..4 {
                let want: Params = [("a", a), ("b", b), ("c", c)]
                    .iter()
                    .map(|&(n, v)| (n.to_string(), ParamValue::Int(v)))
                    .collect();
                assert!(points.contains(&want), "missing {want:?}");
            }
        }
    }
    assert!(study.ask().is_err(), "a 25th point would repeat the grid");
    let continuous = random_space(&mut ChaCha8Rng::seed_from_u64(1));
    assert!(Study::in_memory(continuous, SamplerKind::Grid, false, 0).is_err());
}

#[test]
fn tpe_beats_random_on_a_smooth_bowl() {
    // A sanity check of direction: TPE concentrates near the optimum of a quadratic.
    let space = Space::new(
        (0..3)
            .map(|i| ParamDef {
                name: format!("x{i}"),
                dist: Distribution::Float {
                    low: -10.0,
                    high: 10.0,
                    log: false,
                    step: None,
                },
                condition: None,
            })
            .collect(),
    )
    .unwrap();
    let bowl = |p: &Params| {
        p.values()
            .map(|v| (v.as_f64().unwrap() - 3.0).powi(2))
            .sum::<f64>()
    };
    let best = |kind| {
        let mut total = 0.0;
        for seed in 0..5 {
            let mut study = Study::in_memory(space.clone(), kind, false, seed).unwrap();
            for _ in 0..60 {
                let t = study.ask().unwrap();
                study
                    .tell(t.number, Outcome::Complete(bowl(&t.params)))
                    .unwrap();
            }
            total += study.best().unwrap().unwrap().value.unwrap();
        }
        total / 5.0
    };
    let (tpe, random) = (best(SamplerKind::Tpe), best(SamplerKind::Random));
    assert!(tpe < random, "TPE {tpe} vs random {random}");
}

#[test]
fn gp_models_conditional_parameters_instead_of_drawing_them_at_random() {
    // `x` matters only when `kind` is `a`; a sampler that draws it at random (Optuna's
    // GPSampler) keeps suggesting x all over [0, 1] even after it has learned kind = a.
    let unit = |name: &str, condition: Option<Condition>| ParamDef {
        name: name.into(),
        dist: Distribution::Float {
            low: 0.0,
            high: 1.0,
            log: false,
            step: None,
        },
        condition,
    };
    let space = Space::new(vec![
        ParamDef {
            name: "kind".into(),
            dist: Distribution::Categorical {
                choices: vec!["a".into(), "b".into()],
                weights: None,
            },
            condition: None,
        },
        unit(
            "x",
            Some(Condition {
                parent: "kind".into(),
                values: vec!["a".into()],
            }),
        ),
        unit("y", None),
    ])
    .unwrap();
    let f = |p: &Params| {
        let y = (p["y"].as_f64().unwrap() - 0.3).powi(2);
        match p.get("x") {
            Some(x) => (x.as_f64().unwrap() - 0.8).powi(2) + y,
            None => 0.5 + y,
        }
    };
    for seed in 0..3 {
        let mut study = Study::in_memory(space.clone(), SamplerKind::Gp, false, seed).unwrap();
        let mut late_x = Vec::new();
        for i in 0..40 {
            let t = study.ask().unwrap();
            if let (true, Some(x)) = (i >= 25, t.params.get("x")) {
                late_x.push(x.as_f64().unwrap());
            }
            study
                .tell(t.number, Outcome::Complete(f(&t.params)))
                .unwrap();
        }
        assert!(
            late_x.len() >= 10,
            "seed {seed}: kind = a only {} times",
            late_x.len()
        );
        let spread = late_x.iter().map(|x| (x - 0.8).abs()).sum::<f64>() / late_x.len() as f64;
        assert!(
            spread < 0.05,
            "seed {seed}: mean |x − 0.8| = {spread} over {late_x:?}"
        );
    }
}

/// Constraints (Gramacy et al. 2016: minimise x1 + x2 subject to two constraints over
/// [0, 1]², optimum 0.5998 on a constraint's boundary, where the unconstrained optimum
/// (0, 0) is infeasible): GP-EI, which models each constraint, reaches the feasible
/// optimum; TPE and NSGA-II, which rank infeasible trials last, get near it; and the best
/// trial is always feasible.
#[test]
fn constrained_samplers_find_the_feasible_optimum() {
    use popsweep::tuner::study::Outcome;
    use std::f64::consts::PI;
    let space = popsweep::config::parse_space(
        r#"{"x1": {"distribution": "uniform", "min": 0.0, "max": 1.0},
            "x2": {"distribution": "uniform", "min": 0.0, "max": 1.0}}"#,
        "space",
    )
    .unwrap();
    let gramacy = |x1: f64, x2: f64| {
        (
            x1 + x2,
            [
                1.5 - x1 - 2.0 * x2 - 0.5 * (2.0 * PI * (x1 * x1 - 2.0 * x2)).sin(),
                x1 * x1 + x2 * x2 - 1.5,
            ],
        )
    };
    for (kind, trials, bound) in [
        (SamplerKind::Gp, 50, 0.62),
        (SamplerKind::Tpe, 100, 0.75),
        (SamplerKind::Nsga2, 100, 0.85),
    ] {
        let mut bests = Vec::new();
        for seed in 0..3 {
            let mut study = Study::in_memory(space.clone(), kind, false, seed).unwrap();
            for _ in 0..trials {
                let t = study.ask().unwrap();
                let x = |n: &str| t.params[n].as_f64().unwrap();
                let (f, c) = gramacy(x("x1"), x("x2"));
                study
                    .tell_constrained(t.number, Outcome::Complete(f), &c)
                    .unwrap();
            }
            let best = study.best().unwrap().expect("a feasible trial");
            let (f, c) = gramacy(
                best.params["x1"].as_f64().unwrap(),
                best.params["x2"].as_f64().unwrap(),
            );
            assert!(
                c.iter().all(|&c| c <= 0.0),
                "{kind:?}: the best trial is infeasible"
            );
            bests.push(f);
        }
        bests.sort_by(f64::total_cmp);
        assert!(
            bests[1] < bound,
            "{kind:?}: median best feasible {:.4} (bound {bound})",
            bests[1]
        );
    }
}
