//! Schedules end to end on digits: what each one promises about the population.
//! - a promoted member continues from exactly its weights: its history under successive
//!   halving equals its first epochs under the full budget;
//! - ASHA refills stopped slots and never stops a rung's leader; median stopping prunes;
//! - PBT copies only from other members and records the lineage of every copy;
//! - BOHB runs Hyperband's brackets;
//! - utilisation is accounted for every schedule.

mod common;

use popsweep::config;
use popsweep::data::digits;
use popsweep::storage::TrialState;
use popsweep::sweep::SweepOutcome;

const BASE: &str = "method: random\nmetric: {name: val_accuracy, goal: maximize}\n\
    parameters:\n  lr: {distribution: log_uniform_values, min: 0.01, max: 0.3}\n  \
    dropout: {distribution: uniform, min: 0.0, max: 0.2}\n  width: {values: [16, 32]}\n\
    model: {depth: 1}\nseed: 3\n";

fn run(extra: &str, tag: &str) -> SweepOutcome {
    run_text(&format!("{BASE}{extra}"), tag)
}

fn run_text(text: &str, tag: &str) -> SweepOutcome {
    let sweep = config::parse(text, "inline").unwrap();
    common::run_sweep_on(&sweep, &digits::load().unwrap(), &format!("sched-{tag}")).unwrap()
}

fn count(o: &SweepOutcome, state: TrialState) -> usize {
    o.trials.iter().filter(|t| t.state == state).count()
}

#[test]
fn a_promoted_member_continues_from_its_weights() {
    let train = "train: {epochs: 9, batch_size: 64}\nrun_cap: 9\n";
    let halving = run(
        &format!("{train}scheduler: {{type: sh, min_budget: 1, eta: 3}}\n"),
        "sh",
    );
    let full = run(train, "full");
    let winner = halving
        .trials
        .iter()
        .find(|t| t.state == TrialState::Complete)
        .expect("one trial completes");
    let same = &full.trials[winner.number];
    assert_eq!(winner.params, same.params, "the same configuration");
    assert_eq!(winner.epochs, 9);
    // Every epoch, metrics included, equals the uninterrupted run: nothing was retrained
    // or reset at the rungs.
    assert_eq!(winner.history, same.history);
    assert!(halving.summary.epochs_total < full.summary.epochs_total / 2);
    assert!(halving.summary.utilisation < 1.0 && full.summary.utilisation == 1.0);
}

#[test]
fn asha_refills_slots_and_keeps_each_rungs_leader() {
    let o = run(
        "train: {epochs: 9, batch_size: 64}\nrun_cap: 12\n\
         scheduler: {type: asha, min_budget: 1, eta: 3, population: 4}\n",
        "asha",
    );
    assert_eq!(o.trials.len(), 12, "every trial of run_cap started");
    assert_eq!(o.summary.population, 4);
    assert!(count(&o, TrialState::Pruned) > 0 && count(&o, TrialState::Complete) > 0);
    // Refill: more trials ran than there are slots, and the slots stayed mostly busy.
    assert!(o.summary.utilisation > 0.5, "{}", o.summary.utilisation);
    // At each rung, in arrival order, a trial better than everything before it continues.
    for rung in [1usize, 3] {
        let mut best = f64::NEG_INFINITY;
        let mut arrivals: Vec<(usize, f64, bool)> = o
            .trials
            .iter()
            .filter_map(|t| {
                let v = t.rungs.iter().find(|r| r.epochs == rung)?.value;
                Some((t.number, v, t.epochs > rung))
            })
            .collect();
        arrivals.sort_by_key(|a| a.0);
        for (number, value, continued) in arrivals {
            if value > best {
                assert!(continued, "trial {number} led rung {rung} and was stopped");
            }
            best = best.max(value);
        }
    }
    // Trials are pruned only at rungs.
    for t in o.trials.iter().filter(|t| t.state == TrialState::Pruned) {
        assert!([1, 3].contains(&t.epochs), "pruned at {} epochs", t.epochs);
    }
}

/// `drain: train`: once the last trials have started, a slot no trial will take keeps a
/// trial ASHA stops, until no trial ASHA keeps is training. Checked against `drain: idle`
/// on the same sweep: the trials that start are the same, the slots stay busier, a trial
/// stopped between rungs ends with the sweep, and a rung's leader still continues.
#[test]
fn asha_drain_keeps_empty_slots_busy_until_the_sweep_ends() {
    let head = "train: {epochs: 9, batch_size: 64}\nrun_cap: 12\n\
         scheduler: {type: asha, min_budget: 1, eta: 3, population: 4, drain: ";
    let idle = run(&format!("{head}idle}}\n"), "drain-idle");
    let train = run(&format!("{head}train}}\n"), "drain-train");
    let params = |o: &SweepOutcome| {
        o.trials
            .iter()
            .map(|t| t.params.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(params(&idle), params(&train), "the same 12 trials start");
    let (i, t) = (&idle.summary, &train.summary);
    assert_eq!(i.drain_epochs, 0);
    assert!(t.drain_epochs > 0, "{t:?}");
    assert!(
        t.epochs_total > i.epochs_total,
        "{} vs {}",
        t.epochs_total,
        i.epochs_total
    );
    assert!(
        t.utilisation > i.utilisation,
        "{} vs {}",
        t.utilisation,
        i.utilisation
    );
    let end = |o: &SweepOutcome| {
        o.trials
            .iter()
            .map(|t| t.first_unit + t.epochs)
            .max()
            .unwrap()
    };
    let mut between_rungs = 0;
    for trial in &train.trials {
        if trial.state == TrialState::Pruned && ![1, 3].contains(&trial.epochs) {
            between_rungs += 1;
            assert_eq!(
                trial.first_unit + trial.epochs,
                end(&train),
                "trial {} drained, and stopped before the sweep ended",
                trial.number
            );
        }
    }
    assert!(between_rungs > 0, "some trial drained past a rung");
    for rung in [1usize, 3] {
        let mut best = f64::NEG_INFINITY;
        for trial in &train.trials {
            if let Some(r) = trial.rungs.iter().find(|r| r.epochs == rung) {
                if r.value > best {
                    assert!(
                        trial.epochs > rung,
                        "trial {} led rung {rung}",
                        trial.number
                    );
                }
                best = best.max(r.value);
            }
        }
    }
}

#[test]
fn median_stopping_prunes_below_the_median() {
    let o = run(
        "train: {epochs: 4, batch_size: 64}\nrun_cap: 12\n\
         scheduler: {type: median, n_startup_trials: 2, population: 3}\n",
        "median",
    );
    assert_eq!(o.trials.len(), 12);
    // The first wave completes (no complete trials to compare with yet).
    assert!(o.trials[..3]
        .iter()
        .all(|t| t.state == TrialState::Complete));
    assert!(count(&o, TrialState::Pruned) > 0);
}

#[test]
fn pbt_copies_from_others_and_records_lineage() {
    let o = run(
        "train: {epochs: 8, batch_size: 64}\nrun_cap: 8\n\
         scheduler: {type: pbt, interval: 2, quantile: 0.25}\n",
        "pbt",
    );
    assert_eq!(count(&o, TrialState::Complete), 8);
    assert_eq!(o.summary.utilisation, 1.0);
    let copies: Vec<_> = o
        .trials
        .iter()
        .flat_map(|t| t.lineage.iter().map(move |l| (t, l)))
        .collect();
    // 3 ready points (epochs 2, 4, 6), 2 members in the bottom quarter each.
    assert_eq!(copies.len(), 6);
    for (t, l) in copies {
        assert_ne!(l.from, t.number, "PBT never copies a member into itself");
        assert!([2, 4, 6].contains(&l.epoch));
        // The source's configuration at that epoch: its last change before it, or as sampled.
        let source = &o.trials[l.from];
        let at_copy = source
            .lineage
            .iter()
            .rfind(|e| e.epoch < l.epoch)
            .map_or(&source.params, |e| &e.params);
        assert_eq!(
            l.params["width"], at_copy["width"],
            "architecture is inherited"
        );
        let lr = l.params["lr"].as_f64().unwrap();
        assert!((0.01..=0.3).contains(&lr));
    }
}

/// Explore resamples every knob it may (probability 1 here), but never the activation or
/// the optimizer: the copied weights were trained through the source's activation, and its
/// optimizer state means nothing to another optimizer. Each lineage step therefore keeps
/// the source's values of both.
#[test]
fn pbt_never_explores_the_activation_or_the_optimizer() {
    let text = BASE.replace(
        "width: {values: [16, 32]}\n",
        "width: {values: [16, 32]}\n  activation: {values: [relu, tanh]}\n  \
         optimizer: {values: [sgd, adamw]}\n",
    );
    let o = run_text(
        &format!(
            "{text}train: {{epochs: 6, batch_size: 64}}\nrun_cap: 8\n\
             scheduler: {{type: pbt, interval: 1, quantile: 0.25, resample_probability: 1.0}}\n"
        ),
        "pbt-fixed",
    );
    let kinds = |key: &str| {
        o.trials
            .iter()
            .map(|t| t.params[key].to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        kinds("optimizer").len(),
        2,
        "both optimizers in the population"
    );
    let mut steps = 0;
    for t in &o.trials {
        for l in &t.lineage {
            let source = &o.trials[l.from];
            let at_copy = source
                .lineage
                .iter()
                .rfind(|e| e.epoch <= l.epoch)
                .map_or(&source.params, |e| &e.params);
            for key in ["activation", "optimizer", "width"] {
                assert_eq!(l.params[key], at_copy[key], "trial {} {key}", t.number);
            }
            steps += 1;
        }
    }
    assert!(steps >= 5, "{steps} exploit steps");
}

#[test]
fn configurations_over_the_parameter_budget_are_refused_untrained() {
    // width 32 (64·32 + 32 + 32·10 + 10 = 2410 parameters) is over a budget of 2000;
    // width 16 (1210) is not.
    let text = BASE.replace("model: {depth: 1}", "model: {depth: 1, max_params: 2000}");
    let o = run_text(
        &format!("{text}train: {{epochs: 2, batch_size: 64}}\nrun_cap: 8\n"),
        "budget",
    );
    for t in &o.trials {
        let wide = t.params["width"] == popsweep::space::ParamValue::Int(32);
        assert_eq!(t.state == TrialState::Failed, wide, "trial {}", t.number);
        if wide {
            assert_eq!(t.epochs, 0);
            assert!(t
                .error
                .as_deref()
                .unwrap()
                .contains("not trained: 2410 parameters exceed"));
        }
    }
    assert!(o.trials.iter().any(|t| t.state == TrialState::Failed));
    assert!(o.trials.iter().any(|t| t.state == TrialState::Complete));
}

#[test]
fn bohb_runs_hyperbands_brackets() {
    let o = run(
        "train: {epochs: 9, batch_size: 64}\nscheduler: {type: bohb, min_budget: 1, eta: 3}\n",
        "bohb",
    );
    // Hyperband for R = 9, η = 3: brackets of 9, 5 and 3 trials.
    assert_eq!(
        o.summary
            .brackets
            .iter()
            .map(|b| b.trials)
            .collect::<Vec<_>>(),
        vec![9, 5, 3]
    );
    assert_eq!(o.trials.len(), 17);
    assert!(o.summary.best.is_some());
}

// ---------------------------------------------------------------------------------------
// The scheduler contract: one table over every schedule a sweep file can name (derived
// from `Schedule::KINDS`, so a new kind without an entry here fails) plus W&B's band rule
// for external programs. Each is fed the same simulated arrivals as its driver would feed
// it — synchronous ones a whole rung or round at once, asynchronous ones one at a time —
// and must:
// - answer every arrival, naming only arriving trials (an exploit's source too, never the
//   trial itself);
// - never stop a trial that arrives with its full budget, and never keep a failed one;
// - give the same decisions to the same arrivals;
// - actually stop or move something over the run (all but the full budget), so the checks
//   above are not vacuous.

use popsweep::space::Params;
use popsweep::tuner::scheduler::{Arrival, BandScheduler, Decision, Scheduler, Score};
use rand::{RngExt, SeedableRng};

/// A sweep file's schedule block for each kind of `Schedule::KINDS`.
fn schedule_yaml(kind: &str) -> &'static str {
    match kind {
        "full" => "",
        "sh" => "scheduler: {type: sh, min_budget: 1, eta: 3}\n",
        "hyperband" => "scheduler: {type: hyperband, min_budget: 1, eta: 3}\n",
        "bohb" => "scheduler: {type: bohb, min_budget: 1, eta: 3}\n",
        "asha" => "scheduler: {type: asha, min_budget: 1, eta: 3, population: 4}\n",
        "median" => "scheduler: {type: median, n_startup_trials: 2, population: 4}\n",
        "pbt" => "scheduler: {type: pbt, interval: 3, quantile: 0.25}\n",
        other => panic!("no contract entry for schedule kind {other}: add one"),
    }
}

/// Every scheduler under contract, by name, built fresh each call.
fn contract_table() -> Vec<(String, Vec<Box<dyn Scheduler>>)> {
    let mut table = Vec::new();
    for kind in config::Schedule::KINDS {
        let text = format!(
            "{BASE}train: {{epochs: 9}}\nrun_cap: 17\n{}",
            schedule_yaml(kind)
        );
        let sweep = config::parse(&text, "inline").unwrap();
        assert_eq!(sweep.schedule.kind(), kind, "{text}");
        table.push((kind.to_string(), popsweep::sweep::schedulers(&sweep)));
    }
    let rule = popsweep::tuner::scheduler::BandStopping::from_min_iter(1, 3, 100, false);
    let bands: Box<dyn Scheduler> = Box::new(BandScheduler::new(rule));
    table.push(("wandb-bands".into(), vec![bands]));
    table
}

/// One simulated trial: its curve so far, whether it failed, its parameters.
struct SimTrial {
    number: usize,
    curve: Vec<f64>,
    failed: bool,
    params: Params,
}

/// Runs `scheduler` over 12 trials with random curves, 9 units each (up to 12 for a
/// scheduler with no full budget), checking each decision against the contract. Returns
/// every decision taken, in order, and whether one stopped or moved a trial that had not
/// failed.
fn simulate(
    scheduler: &mut dyn Scheduler,
    name: &str,
    seed: u64,
) -> (Vec<(usize, Decision)>, bool) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let max = scheduler.max_budget().unwrap_or(12);
    let mut trials: Vec<SimTrial> = (0..12)
        .map(|number| {
            let mut params = Params::new();
            params.insert("lr".into(), popsweep::space::ParamValue::Float(0.05));
            SimTrial {
                number,
                curve: Vec::new(),
                failed: false,
                params,
            }
        })
        .collect();
    let (mut log, mut acted) = (Vec::new(), false);
    for _ in 0..max {
        if trials.is_empty() {
            break;
        }
        let live: Vec<usize> = (0..trials.len()).collect();
        for &i in &live {
            let t = &mut trials[i];
            t.failed |= rng.random::<f64>() < 0.03;
            let v = rng.random::<f64>();
            t.curve.push(if t.failed { f64::NAN } else { v });
        }
        let arrivals: Vec<Arrival<'_>> = live
            .iter()
            .map(|&i| {
                let t = &trials[i];
                Arrival {
                    trial: t.number,
                    curve: &t.curve,
                    score: (!t.failed).then(|| Score::plain(*t.curve.last().unwrap())),
                    params: &t.params,
                }
            })
            .collect();
        let groups: Vec<&[Arrival<'_>]> = if scheduler.synchronous() {
            vec![&arrivals[..]]
        } else {
            arrivals.chunks(1).collect()
        };
        let mut leaving = Vec::new();
        for group in groups {
            let decisions = scheduler.decide(group, true);
            for a in group {
                let mine: Vec<&Decision> = decisions
                    .iter()
                    .filter(|(t, _)| *t == a.trial)
                    .map(|(_, d)| d)
                    .collect();
                assert!(
                    !mine.is_empty(),
                    "{name}: trial {} got no decision",
                    a.trial
                );
                acted |= a.score.is_some() && mine.iter().any(|d| **d != Decision::Continue);
                if a.score.is_none() {
                    assert!(
                        !mine.contains(&&Decision::Continue),
                        "{name}: failed trial {} kept",
                        a.trial
                    );
                }
                if a.score.is_some() && a.epochs() >= max && scheduler.max_budget().is_some() {
                    assert!(
                        mine.iter().all(|d| **d == Decision::Continue),
                        "{name}: trial {} stopped or moved at its full budget: {mine:?}",
                        a.trial
                    );
                }
            }
            for (t, d) in &decisions {
                assert!(
                    group.iter().any(|a| a.trial == *t),
                    "{name}: decision names trial {t}, which did not arrive"
                );
                if let Decision::Exploit { from } = d {
                    assert!(
                        from != t && group.iter().any(|a| a.trial == *from),
                        "{name}: trial {t} exploits {from}"
                    );
                }
                if *d == Decision::Stop {
                    leaving.push(*t);
                }
            }
            log.extend(decisions);
        }
        for a in &arrivals {
            if a.score.is_some() && a.epochs() >= max {
                scheduler.complete(a.trial, a.curve);
            }
        }
        trials.retain(|t| !leaving.contains(&t.number) && t.curve.len() < max);
    }
    (log, acted)
}

#[test]
fn every_scheduler_keeps_the_contract() {
    let (first, second) = (contract_table(), contract_table());
    for ((name, mut a), (_, mut b)) in first.into_iter().zip(second) {
        let mut acted = false;
        for (i, (sa, sb)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
            for seed in 0..20 {
                let (once, moved) = simulate(sa.as_mut(), &name, seed);
                let (again, _) = simulate(sb.as_mut(), &name, seed);
                assert_eq!(
                    once, again,
                    "{name} bracket {i} seed {seed}: not deterministic"
                );
                acted |= moved;
            }
            // With a history behind it, the worst trial yet still completes once it has
            // its full budget.
            if let Some(max) = sa.max_budget() {
                let (worst, params) = (vec![-1e9; max], Params::new());
                let arrival = Arrival {
                    trial: 1000,
                    curve: &worst,
                    score: Some(Score::plain(-1e9)),
                    params: &params,
                };
                let decisions = sa.decide(&[arrival], true);
                assert!(
                    decisions.iter().all(|(_, d)| *d == Decision::Continue),
                    "{name}: the worst trial at its full budget got {decisions:?}"
                );
            }
        }
        assert_eq!(
            acted,
            name != "full",
            "{name}: whether it ever stopped or moved a trial"
        );
    }
}
