//! The command line. Errors print as one line on stderr (`error: file:line: field: …`) and
//! exit with 2 for bad input, 1 otherwise; nothing here panics on user input.

use crate::backend::cpu::CpuBackend;
use crate::backend::Backend;
use crate::config::{self, Sweep};
use crate::data::digits;
use crate::error::Result;
use crate::report::log::{default_run_dir, RunLog};
use crate::sweep::{prepare_data, run_sweep, RungReport, SweepOutcome};
use crate::tuner::trial::TrialState;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "popsweep",
    version,
    about = "Population-batched hyperparameter tuning"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a sweep: train its trials as one population, prune at rungs, test the best once.
    Run {
        /// Sweep file (W&B sweep YAML plus popsweep's keys). Default: the embedded
        /// examples/digits.yaml.
        sweep: Option<PathBuf>,
        /// Run directory. Default: runs/<name>-<UTC timestamp>/.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads for the CPU backend. Default: one per core.
        #[arg(long)]
        threads: Option<usize>,
        /// Print only the final result.
        #[arg(long)]
        quiet: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            sweep,
            out,
            threads,
            quiet,
        } => run(sweep, out, threads, quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn run(
    sweep_path: Option<PathBuf>,
    out: Option<PathBuf>,
    threads: Option<usize>,
    quiet: bool,
) -> Result<()> {
    let (sweep, source) = match &sweep_path {
        Some(path) => (config::load(path)?, path.display().to_string()),
        None => (
            config::parse(config::DEFAULT_SWEEP, config::DEFAULT_SWEEP_NAME)?,
            format!("{} (embedded)", config::DEFAULT_SWEEP_NAME),
        ),
    };
    let backend = threads.map_or_else(CpuBackend::with_all_cores, CpuBackend::new);
    let data = digits::load()?;
    let (tuning, held_out) = prepare_data(&sweep, &data);
    let run_dir = out.unwrap_or_else(|| default_run_dir(&sweep.name));
    let mut log = RunLog::create(&run_dir)?;
    if !quiet {
        let rungs = sweep
            .halving
            .map_or_else(|| vec![sweep.epochs], |h| h.rungs());
        println!(
            "sweep `{}` from {source}: {} trials, rungs at {:?} epochs, backend {}",
            sweep.name,
            sweep.run_cap,
            rungs,
            backend.name()
        );
        println!(
            "data: digits, {} train / {} validation / {} test rows (test held out until the end)",
            tuning.train.len(),
            tuning.val.len(),
            held_out.len()
        );
    }
    let metric = sweep.metric.name.clone();
    let mut on_rung = |r: &RungReport| {
        if !quiet {
            let leader = r.leader.map_or("no finite value".into(), |(t, v)| {
                format!("leader trial {t} {metric} {v:.4}")
            });
            println!(
                "rung {}/{} ({} epoch{}): {} trained, {} continue, {} failed; {leader} ({:.1} s)",
                r.rung + 1,
                r.rungs,
                r.budget,
                if r.budget == 1 { "" } else { "s" },
                r.trained,
                r.continuing,
                r.failed,
                r.seconds
            );
        }
    };
    let outcome = run_sweep(&sweep, &tuning, held_out, &backend, &mut log, &mut on_rung)?;
    print_results(&sweep, &outcome, quiet);
    println!(
        "results: {}/ (trials.jsonl, summary.json)",
        log.dir().display()
    );
    Ok(())
}

/// Top trials (furthest trained first, then by the metric), then the best trial.
fn print_results(sweep: &Sweep, outcome: &SweepOutcome, quiet: bool) {
    let metric = &sweep.metric;
    let names: Vec<&String> = sweep.space.params.iter().map(|p| &p.name).collect();
    if !quiet {
        let mut order: Vec<_> = outcome
            .trials
            .iter()
            .filter(|t| t.state != TrialState::Failed)
            .collect();
        order.sort_by(|a, b| {
            let va = a.rungs.last().map_or(f64::NAN, |v| v.value);
            let vb = b.rungs.last().map_or(f64::NAN, |v| v.value);
            let by_value = if metric.maximize {
                vb.total_cmp(&va)
            } else {
                va.total_cmp(&vb)
            };
            b.epochs.cmp(&a.epochs).then(by_value)
        });
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
    }
    let s = &outcome.summary;
    if let Some(best) = &s.best {
        println!(
            "best trial {}: {} {:.4} on validation, {:.4} on test (test accuracy {:.4}, test loss {:.4})",
            best.trial, metric.name, best.val, best.test, best.test_accuracy, best.test_loss
        );
        let params: Vec<String> = best
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("  params: {}", params.join(" "));
    }
    println!(
        "trials: {} complete, {} pruned, {} failed; {} epochs trained in {:.1} s",
        s.trials["complete"],
        s.trials["pruned"],
        s.trials["failed"],
        s.epochs_total,
        s.wall_seconds
    );
}
