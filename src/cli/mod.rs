//! The command line. Errors print as one line on stderr (`error: file:line: field: …`) and
//! exit with 2 for bad input, 1 otherwise; nothing here panics on user input.

mod dashboard;
mod print;
mod resume;
mod run;
mod study;
mod tools;
mod workers;

use crate::backend::BackendChoice;
use clap::{Parser, Subcommand};
use resume::resume;
use run::{load_for_run, run, Target};
use std::path::PathBuf;
use std::process::ExitCode;
use study::{ask, best, enqueue, export, tell, tell_intermediate, StudyFlags, Told};
use tools::{bench_command, lr_find, report, sanity, BenchArgs, LrFindArgs};

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
    Run(RunArgs),
    /// Continue a sweep that was interrupted or crashed, in its run directory: trials in
    /// trials.jsonl (or an external sweep's journal) are kept as recorded, the rest run
    /// again (a PBT sweep from its last checkpoint).
    Resume(ResumeArgs),
    /// Check that the default model can learn before a sweep: initial loss near ln C, and
    /// 64 training rows overfitted to 99% accuracy.
    Sanity {
        /// Sweep file (its data and model/train defaults). Default: the embedded digits sweep.
        sweep: Option<PathBuf>,
        /// Step budget for overfitting the tiny batch.
        #[arg(long, default_value_t = 500)]
        steps: usize,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Where to train: auto, cpu or cuda.
        #[arg(long, value_enum, default_value = "auto")]
        backend: BackendChoice,
    },
    /// Suggest new trials of a study kept in a journal (created by the first ask). Prints
    /// one JSON line per trial: {"trial": N, "params": {...}}.
    Ask {
        #[command(flatten)]
        at: StudyArgs,
        /// Search space in the sweep file's `parameters` syntax: a YAML/JSON file, or the
        /// JSON text itself. Only the first ask of a study takes it.
        #[arg(long)]
        space: Option<String>,
        /// Sampler of a new study (default tpe); an existing study keeps its own.
        #[arg(long)]
        sampler: Option<String>,
        /// Direction of a new study: minimize (default) or maximize.
        #[arg(long, conflicts_with = "directions")]
        direction: Option<String>,
        /// Several objectives' directions, comma-separated (`minimize,maximize`): a
        /// multi-objective study (told with --values, best is its Pareto front).
        #[arg(long)]
        directions: Option<String>,
        /// Seed of a new study (default 0).
        #[arg(long)]
        seed: Option<u64>,
        /// Pruner of a new study, consulted by `tell --intermediate`: a name (median,
        /// percentile, successive_halving, hyperband, threshold, patient, wilcoxon, nop)
        /// with Optuna's defaults, or a JSON object such as
        /// '{"kind": "median", "n_warmup_steps": 5}'.
        #[arg(long)]
        pruner: Option<String>,
        /// How many trials to suggest (as one batch).
        #[arg(long, default_value_t = 1)]
        n: usize,
    },
    /// Finish a trial of a study with its value, or as pruned or failed.
    Tell {
        #[command(flatten)]
        at: StudyArgs,
        #[arg(long)]
        trial: usize,
        /// The objective value (negative values welcome: --value -3.2e-07).
        #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["state", "intermediate", "values"])]
        value: Option<f64>,
        /// One value per objective of a multi-objective study, comma-separated.
        #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["state", "intermediate"])]
        values: Option<String>,
        /// `pruned` or `failed`.
        #[arg(long, required_unless_present_any = ["value", "values", "intermediate"], conflicts_with = "intermediate")]
        state: Option<String>,
        /// Constraint values, comma-separated: the trial is feasible when every one is
        /// ≤ 0 (samplers prefer feasible trials; best reports only them).
        #[arg(long, allow_hyphen_values = true, conflicts_with = "intermediate")]
        constraints: Option<String>,
        /// An intermediate value at --step: recorded, then the study's pruner decides and
        /// `{"prune": true|false}` is printed; the trial keeps running.
        #[arg(long, allow_hyphen_values = true, requires = "step")]
        intermediate: Option<f64>,
        /// The step (epoch, fold) of --intermediate.
        #[arg(long, requires = "intermediate")]
        step: Option<u64>,
    },
    /// Write a study (or a run) in Optuna's JournalStorage format, for optuna-dashboard
    /// and optuna.visualization: `JournalStorage(JournalFileBackend(FILE))`.
    Export {
        /// The journal file to write (it must not exist yet).
        #[arg(long)]
        optuna_journal: PathBuf,
        #[command(flatten)]
        at: StudyArgs,
    },
    /// Queue a configuration for the study's next ask (Optuna's `enqueue_trial`): a
    /// known good setting, or one to compare against, tried before the sampler suggests.
    Enqueue {
        #[command(flatten)]
        at: StudyArgs,
        /// The configuration as JSON (`'{"lr": 0.01, "width": 64}'`), checked against the
        /// study's space.
        #[arg(long)]
        params: String,
    },
    /// Print the best complete trial of a study as JSON.
    Best {
        #[command(flatten)]
        at: StudyArgs,
    },
    /// Time population training on a synthetic workload (the interface of
    /// ../shared/bench/peer_bench.py), next to the SGEMM ceiling measured in the same run.
    Bench(BenchArgs),
    /// Learning-rate range test (Leslie Smith): the loss as the learning rate grows
    /// exponentially, for several seeds at once; suggests a learning rate and a sweep range.
    LrFind(LrFindArgs),
    /// Serve the report's views live while a sweep runs (a read-only local web server
    /// that the page polls every second), from a run directory, an ask/tell study or a
    /// database study.
    Dashboard(dashboard::DashboardArgs),
    /// Summarise a run directory: best trial, importance, overfitting flags, top trials;
    /// writes a self-contained report.html into it.
    Report {
        /// The run directory (or, with --storage, where to write the study's one).
        #[arg(required_unless_present_any = ["storage", "study"], conflicts_with = "study")]
        run_dir: Option<PathBuf>,
        /// An ask/tell study directory (holds journal.jsonl): its report.html is written
        /// there, the study drawn as the run of a program whose metric is its objective.
        #[arg(long, conflicts_with = "storage")]
        study: Option<PathBuf>,
        /// One JSON object (importance, overfitting flags) instead of text.
        #[arg(long)]
        json: bool,
        /// A study of `run --storage` workers: its sweep file and records are written as a
        /// run directory (RUN_DIR, default runs/<study-name>/), then reported on.
        #[arg(long, requires = "study_name")]
        storage: Option<String>,
        #[arg(long, requires = "storage")]
        study_name: Option<String>,
    },
}

/// Where a study command's study lives: a directory, or a study of a database.
#[derive(clap::Args, Debug)]
struct StudyArgs {
    /// Study directory (holds journal.jsonl); for `export`, also a run directory.
    #[arg(long, required_unless_present = "storage", conflicts_with = "storage")]
    study: Option<PathBuf>,
    /// A PostgreSQL database shared by many processes and machines
    /// (postgresql://user:password@host:port/database), instead of --study.
    #[arg(long, requires = "study_name")]
    storage: Option<String>,
    /// The study's name within --storage.
    #[arg(long, requires = "storage")]
    study_name: Option<String>,
}

impl From<StudyArgs> for study::StudyAt {
    fn from(a: StudyArgs) -> study::StudyAt {
        study::StudyAt::from_flags(a.study, a.storage, a.study_name)
    }
}

/// `popsweep run`'s arguments.
#[derive(clap::Args)]
struct RunArgs {
    /// Sweep file (W&B sweep YAML plus popsweep's keys). Default: the embedded
    /// examples/digits.yaml.
    sweep: Option<PathBuf>,
    /// Run directory. Default: runs/<name>-<UTC timestamp>/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads for the CPU backend. Default: one per core.
    #[arg(long)]
    threads: Option<usize>,
    /// Where to train: auto (the GPU if one is usable, else the CPU), cpu or cuda.
    /// Default: the sweep file's `backend`, else auto.
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
    /// Print only the final result.
    #[arg(long)]
    quiet: bool,
    /// Print only `summary.json`'s object on stdout (implies --quiet).
    #[arg(long)]
    json: bool,
    /// Skip the sanity preflight (initial loss and overfitting a tiny batch).
    #[arg(long)]
    no_sanity: bool,
    /// Work on a study shared in PostgreSQL (postgresql://user:password@host:port/db)
    /// with every other worker started on it: ASHA and median schedules. Overrides
    /// the sweep file's `storage`.
    #[arg(long)]
    storage: Option<String>,
    /// The shared study's name. Default: the sweep's `name`.
    #[arg(long)]
    study_name: Option<String>,
    /// Trials this process trains at once (ASHA's and median stopping's slots), instead
    /// of the sweep file's `population`: each worker of a shared study sizes its own
    /// population to its device.
    #[arg(long)]
    population: Option<usize>,
    /// Seconds between a worker's lease renewals; a trial whose worker misses two is
    /// failed and re-queued.
    #[arg(long, default_value_t = 10.0)]
    heartbeat: f64,
    /// How many times a dead worker's trial is re-queued with the same parameters.
    #[arg(long, default_value_t = 3)]
    max_retries: usize,
}

/// `popsweep resume`'s arguments.
#[derive(clap::Args)]
struct ResumeArgs {
    run_dir: PathBuf,
    /// Print only the final result.
    #[arg(long)]
    quiet: bool,
    /// Print only `summary.json`'s object on stdout (implies --quiet).
    #[arg(long)]
    json: bool,
    /// The run directory is a `run --storage` worker's: it starts again and rejoins
    /// its study in this database.
    #[arg(long)]
    storage: Option<String>,
    /// Seconds between lease renewals (with --storage).
    #[arg(long, default_value_t = 10.0)]
    heartbeat: f64,
    /// Retries of a dead worker's trial (with --storage).
    #[arg(long, default_value_t = 3)]
    max_retries: usize,
}

fn run_command(a: RunArgs) -> crate::error::Result<()> {
    let mut loaded = load_for_run(a.sweep)?;
    if let Some(n) = a.population {
        workers::set_population(&mut loaded.sweep, n)?;
    }
    let flags = workers::WorkerFlags {
        storage: a.storage,
        study_name: a.study_name,
        heartbeat: a.heartbeat,
        max_retries: a.max_retries,
    };
    let target = match workers::shared_study(flags, &loaded)? {
        Some(shared) => Target::Shared(a.out, shared),
        None => Target::Fresh(a.out),
    };
    let quiet = (a.quiet || a.json, a.json);
    run(loaded, target, (a.backend, a.threads), quiet, !a.no_sanity)
}

fn resume_command(a: ResumeArgs) -> crate::error::Result<()> {
    let quiet = (a.quiet || a.json, a.json);
    match a.storage {
        Some(url) => {
            let flags = workers::WorkerFlags {
                storage: Some(url),
                study_name: None,
                heartbeat: a.heartbeat,
                max_retries: a.max_retries,
            };
            workers::resume_worker(&a.run_dir, flags, quiet)
        }
        None => resume(&a.run_dir, quiet.0, quiet.1),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run_command(args),
        Command::Resume(args) => resume_command(args),
        Command::Sanity {
            sweep,
            steps,
            json,
            backend,
        } => sanity(sweep, steps, json, backend),
        Command::Ask {
            at,
            space,
            sampler,
            direction,
            seed,
            pruner,
            directions,
            n,
        } => ask(
            &at.into(),
            space.as_deref(),
            StudyFlags {
                sampler,
                direction,
                seed,
                pruner,
                directions,
            },
            n,
        ),
        Command::Tell {
            at,
            trial,
            value,
            values,
            state,
            constraints,
            intermediate,
            step,
        } => match (intermediate, step) {
            (Some(v), Some(step)) => tell_intermediate(&at.into(), trial, step, v),
            _ => tell(
                &at.into(),
                trial,
                Told {
                    value,
                    values: values.as_deref(),
                    state: state.as_deref(),
                    constraints: constraints.as_deref(),
                },
            ),
        },
        Command::Best { at } => best(&at.into()),
        Command::Enqueue { at, params } => enqueue(&at.into(), &params),
        Command::Export { optuna_journal, at } => export(&at.into(), &optuna_journal),
        Command::Bench(args) => bench_command(args),
        Command::LrFind(args) => lr_find(args),
        Command::Dashboard(args) => dashboard::dashboard(args),
        Command::Report {
            run_dir,
            study,
            json,
            storage,
            study_name,
        } => match (storage, study_name, study) {
            (Some(url), Some(name), _) => workers::study_run_dir(&url, &name, run_dir)
                .and_then(|dir| report(crate::report::run::RunData::load(&dir)?, json)),
            (_, _, Some(dir)) => {
                crate::report::study_view::load(&dir).and_then(|r| report(r, json))
            }
            _ => {
                crate::report::run::RunData::load(&run_dir.expect("clap requires a run directory"))
                    .and_then(|r| report(r, json))
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line whatever a message quotes (a damaged file's bytes, an OS error):
            // scripts read the last stderr line as the error.
            let message: String = e
                .to_string()
                .chars()
                .flat_map(|c| match c {
                    '\n' | '\r' | '\t' => vec![' '],
                    c if c.is_control() => c.escape_default().collect(),
                    c => vec![c],
                })
                .collect();
            eprintln!("error: {message}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
