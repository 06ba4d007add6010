//! What `run` prints: the sanity report, the results table, the slot schedule.

use crate::config::{Drain, Schedule, Sweep};
use crate::storage::TrialState;
use crate::sweep::{standing, SweepOutcome};
use crate::train::sanity::{SanityReport, TINY_BATCH};
use crate::tuner::scheduler::by_standing;

/// One line per check; the diagnosis when one fails.
pub(super) fn describe_sanity(r: &SanityReport) -> String {
    let regression = r.task == crate::data::Task::Regression;
    let overfit = match (r.steps_to_overfit, regression) {
        (Some(steps), _) => format!("overfits {TINY_BATCH} rows in {steps} steps"),
        (None, true) => format!(
            "does NOT overfit {TINY_BATCH} rows in {} steps (loss {:.3e})",
            r.max_steps, r.final_train_loss
        ),
        (None, false) => format!(
            "does NOT overfit {TINY_BATCH} rows in {} steps ({:.1}%)",
            r.max_steps,
            100.0 * r.final_train_accuracy
        ),
    };
    let too_far = if r.initial_loss_ok { "" } else { ", too far" };
    let mut text = if regression {
        format!(
            "sanity: initial loss {:.3e} (mean squared target {:.3e}{too_far}); {overfit}",
            r.initial_loss, r.expected_initial_loss
        )
    } else {
        format!(
            "sanity: initial loss {:.3} (ln {} = {:.3}{too_far}); {overfit}",
            r.initial_loss, r.classes, r.expected_initial_loss
        )
    };
    for d in &r.diagnosis {
        text.push_str(&format!("\n  - {d}"));
    }
    text
}

/// A sweep of several objectives: its Pareto front, a line per trial.
fn print_front(summary: &crate::sweep::Summary) {
    if summary.pareto_front.is_empty() {
        return;
    }
    println!("pareto front ({} trials):", summary.pareto_front.len());
    for p in &summary.pareto_front {
        let values: Vec<String> = p
            .values
            .iter()
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect();
        println!("{:>5}  {}", p.trial, values.join(", "));
    }
    println!();
}

/// Top trials (furthest trained first, then by the metric), then the best trial.
pub(super) fn print_results(sweep: &Sweep, outcome: &SweepOutcome, quiet: bool) {
    let metric = &sweep.metric;
    let names: Vec<&String> = sweep.space.params.iter().map(|p| &p.name).collect();
    if !quiet {
        let mut order: Vec<_> = outcome
            .trials
            .iter()
            .filter(|t| t.state != TrialState::Failed)
            .collect();
        // The sweep's own order, so the first row is the trial tested below.
        order.sort_by(|a, b| by_standing(standing(a), standing(b), metric.maximize));
        println!(
            "\ntop trials by {} ({}):",
            metric.name,
            if metric.maximize {
                "higher is better"
            } else {
                "lower is better"
            }
        );
        let header: Vec<String> = names.iter().map(|n| format!("{n:>12}")).collect();
        println!(
            "{:>5} {:>9} {:>6} {:>12} {}",
            "trial",
            "state",
            "epochs",
            metric.name,
            header.join(" ")
        );
        for t in order.iter().take(10) {
            let state = format!("{:?}", t.state).to_lowercase();
            let value = t.rungs.last().map_or(f64::NAN, |v| v.value);
            let cells: Vec<String> = names
                .iter()
                .map(|n| {
                    format!(
                        "{:>12}",
                        t.params.get(*n).map_or("-".into(), |v| v.to_string())
                    )
                })
                .collect();
            println!(
                "{:>5} {state:>9} {:>6} {value:>12.4} {}",
                t.number,
                t.epochs,
                cells.join(" ")
            );
        }
        println!();
        print_front(&outcome.summary);
    }
    let s = &outcome.summary;
    if let Some(best) = &s.best {
        // Regression has no accuracy (NaN): the test loss alone.
        let accuracy = if best.test_accuracy.is_nan() {
            String::new()
        } else {
            format!("test accuracy {:.4}, ", best.test_accuracy)
        };
        println!(
            "best trial {}: {} {:.4} on validation, {:.4} on test ({accuracy}test loss {:.4})",
            best.trial, metric.name, best.val, best.test, best.test_loss
        );
        let params: Vec<String> = best
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("  params: {}", params.join(" "));
    }
    if let Some(f) = &s.final_stage {
        print_final(f);
    }
    let drained = match s.drain_epochs {
        0 => String::new(),
        n => format!(" ({n} of them draining past ASHA's stop)"),
    };
    println!(
        "trials: {} complete, {} pruned, {} diverged, {} failed; {} epochs trained{drained} in {:.1} s",
        s.trials["complete"],
        s.trials["pruned"],
        s.trials.get("diverged").copied().unwrap_or(0),
        s.trials["failed"],
        s.epochs_total,
        s.wall_seconds
    );
    print_early_end(sweep, s);
}

/// Why a sweep ended before its plan, if it did: its wall budget, or its metric's target.
fn print_early_end(sweep: &Sweep, s: &crate::sweep::Summary) {
    if s.wall_budget_cut {
        println!(
            "the wall budget of {:.0} s ran out: the trials training then finished complete at \
             the epochs they had trained",
            sweep.wall_seconds.unwrap_or(s.wall_seconds)
        );
    }
    if let (Some(trial), Some(target)) = (s.target_reached_by, sweep.metric.target) {
        println!(
            "trial {trial} reached the target {} {target}: no trial started after it",
            sweep.metric.name
        );
    }
}

/// The final stage's table: each finalist's validation and test, and the ensemble's.
fn print_final(f: &crate::sweep::FinalReport) {
    println!(
        "final: the top {} trained {} epochs on {}, each scored once on test:",
        f.finalists.len(),
        f.epochs,
        if f.retrain {
            "train + validation"
        } else {
            "train (each trial rebuilt exactly)"
        }
    );
    println!(
        "{:>5} {:>12} {:>14} {:>10}",
        "trial", "validation", "test accuracy", "test loss"
    );
    for t in &f.finalists {
        let show = |v: Option<f64>| v.map_or("diverged".to_string(), |v| format!("{v:.4}"));
        println!(
            "{:>5} {:>12.4} {:>14} {:>10}",
            t.trial,
            t.val,
            show(t.test_accuracy),
            show(t.test_loss)
        );
    }
    if let Some(e) = &f.ensemble {
        let trials: Vec<String> = e.trials.iter().map(|t| t.to_string()).collect();
        println!(
            "ensemble of trials {} (mean of their predictions): test accuracy {:.4}, test loss {:.4}",
            trials.join(", "),
            e.test_accuracy,
            e.test_loss
        );
    }
}

/// A slot schedule in words, for the sweep's header line (the bracket schedules show their
/// brackets instead); `idle_slots_cost_time`: the backend's, which `drain: auto` follows.
pub(super) fn slot_schedule(sweep: &Sweep, idle_slots_cost_time: bool) -> String {
    let slots = |n: usize| n.min(sweep.run_cap);
    match &sweep.schedule {
        Schedule::Asha {
            halving,
            slots: n,
            drain,
        } => {
            let mut rungs = halving.rungs();
            rungs.pop();
            let drain = match drain {
                Drain::Auto if idle_slots_cost_time => "train (auto)",
                Drain::Auto => "idle (auto)",
                Drain::Idle => "idle",
                Drain::Train => "train",
            };
            format!(
                "ASHA in {} slots, rungs at {rungs:?} epochs, η = {}, drain {drain}",
                slots(*n),
                halving.eta
            )
        }
        Schedule::Median {
            n_startup_trials,
            n_warmup_steps,
            interval_steps,
            slots: n,
        } => format!(
            "median stopping in {} slots (after {n_startup_trials} trials and \
             {n_warmup_steps} warm-up epochs, every {interval_steps})",
            slots(*n)
        ),
        Schedule::Pbt(pbt) => format!(
            "PBT of all of them, exploit/explore every {} epochs (quantile {}, resample \
             probability {})",
            pbt.interval, pbt.quantile, pbt.resample_probability
        ),
        other => format!("scheduler {other:?}"),
    }
}
