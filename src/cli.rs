//! The command line. Errors print as one line on stderr (`error: file:line: field: …`) and
//! exit with 2 for bad input, 1 otherwise; nothing here panics on user input.

use crate::backend::{self, BackendChoice};
use crate::config::{self, Drain, Schedule, Sweep};
use crate::error::Error;
use crate::error::Result;
use crate::external;
use crate::model::hparams::OptimizerKind;
use crate::report::log::{default_run_dir, RunLog};
use crate::report::progress::SweepProgress;
use crate::space::{Params, Space};
use crate::storage::{Journal, Op, Storage, StudyHeader, TrialRecord, TrialState};
use crate::sweep::{
    bracket_plans, load_data, load_dataset, run_nested_cv, run_sweep, standing, OuterFold,
    Progress, SweepOutcome,
};
use crate::train::sanity::{sanity_check, SanityReport, TINY_BATCH};
use crate::tuner::sampler::SamplerKind;
use crate::tuner::scheduler::by_standing;
use crate::tuner::study::{Outcome, Study};
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    },
    /// Continue a sweep that was interrupted or crashed, in its run directory: trials in
    /// trials.jsonl (or an external sweep's journal) are kept as recorded, the rest run
    /// again (a PBT sweep from its last checkpoint).
    Resume {
        run_dir: PathBuf,
        /// Print only the final result.
        #[arg(long)]
        quiet: bool,
        /// Print only `summary.json`'s object on stdout (implies --quiet).
        #[arg(long)]
        json: bool,
    },
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
        /// Study directory (holds journal.jsonl).
        #[arg(long)]
        study: PathBuf,
        /// Search space in the sweep file's `parameters` syntax: a YAML/JSON file, or the
        /// JSON text itself. Only the first ask of a study takes it.
        #[arg(long)]
        space: Option<String>,
        /// Sampler of a new study (default tpe); an existing study keeps its own.
        #[arg(long)]
        sampler: Option<String>,
        /// Direction of a new study: minimize (default) or maximize.
        #[arg(long)]
        direction: Option<String>,
        /// Seed of a new study (default 0).
        #[arg(long)]
        seed: Option<u64>,
        /// How many trials to suggest (as one batch).
        #[arg(long, default_value_t = 1)]
        n: usize,
    },
    /// Finish a trial of a study with its value, or as pruned or failed.
    Tell {
        #[arg(long)]
        study: PathBuf,
        #[arg(long)]
        trial: usize,
        /// The objective value (negative values welcome: --value -3.2e-07).
        #[arg(long, allow_hyphen_values = true, conflicts_with = "state")]
        value: Option<f64>,
        /// `pruned` or `failed`.
        #[arg(long, required_unless_present = "value")]
        state: Option<String>,
    },
    /// Print the best complete trial of a study as JSON.
    Best {
        #[arg(long)]
        study: PathBuf,
    },
    /// Time population training on a synthetic workload (the interface of
    /// ../shared/bench/peer_bench.py), next to the SGEMM ceiling measured in the same run.
    Bench(BenchArgs),
    /// Learning-rate range test (Leslie Smith): the loss as the learning rate grows
    /// exponentially, for several seeds at once; suggests a learning rate and a sweep range.
    LrFind(LrFindArgs),
    /// Summarise a run directory: best trial, importance, overfitting flags, top trials;
    /// writes a self-contained report.html into it.
    Report {
        run_dir: PathBuf,
        /// One JSON object (importance, overfitting flags) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct LrFindArgs {
    /// Sweep file whose data, model and train defaults to use. Default: the embedded digits sweep.
    sweep: Option<PathBuf>,
    #[arg(long, default_value_t = 1e-5)]
    min_lr: f64,
    #[arg(long, default_value_t = 10.0)]
    max_lr: f64,
    /// Minibatches over which the learning rate grows from min to max.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Range tests run together, one per seed.
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// Minibatch size. Default: the sweep's.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Output directory for the curve (CSV, SVG) and the result (JSON). Default: runs/lr-find-<name>-<UTC>/.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    threads: Option<usize>,
    /// One JSON object (with `suggested_lr`) on stdout instead of text.
    #[arg(long)]
    json: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            sweep,
            out,
            threads,
            backend,
            quiet,
            json,
            no_sanity,
        } => load_for_run(sweep).and_then(|loaded| {
            run(
                loaded,
                Target::Fresh(out),
                (backend, threads),
                (quiet || json, json),
                !no_sanity,
            )
        }),
        Command::Resume {
            run_dir,
            quiet,
            json,
        } => resume(&run_dir, quiet || json, json),
        Command::Sanity {
            sweep,
            steps,
            json,
            backend,
        } => sanity(sweep, steps, json, backend),
        Command::Ask {
            study,
            space,
            sampler,
            direction,
            seed,
            n,
        } => ask(
            &study,
            space.as_deref(),
            StudyFlags {
                sampler,
                direction,
                seed,
            },
            n,
        ),
        Command::Tell {
            study,
            trial,
            value,
            state,
        } => tell(&study, trial, value, state.as_deref()),
        Command::Best { study } => best(&study),
        Command::Bench(args) => bench_command(args),
        Command::LrFind(args) => lr_find(args),
        Command::Report { run_dir, json } => report(&run_dir, json),
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

/// Opens the study in `dir`, creating it from the given settings if it has no header yet.
/// Settings given for an existing study must match the ones it was created with.
/// The study and the header it was created with (by the first ask).
fn open_study(dir: &Path, new: Option<&StudyHeader>) -> Result<(Study, StudyHeader)> {
    if new.is_some() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    } else if !dir.join("journal.jsonl").is_file() {
        return Err(study_error(
            dir,
            "no study here yet; create it with `popsweep ask --space ...`",
        ));
    }
    let mut journal = Journal::open(&dir.join("journal.jsonl"))?;
    for w in journal.warnings.drain(..) {
        eprintln!("warning: {w}");
    }
    let header = match (journal.refresh()?.header.clone(), new) {
        (Some(h), _) => h,
        (None, Some(new)) => journal
            .transact(|state| match &state.header {
                Some(h) => Ok((vec![], h.clone())),
                None => Ok((vec![Op::Study(new.clone())], new.clone())),
            })?
            .map_err(Error::Run)?,
        (None, None) => {
            return Err(study_error(
                dir,
                "no study here yet; create it with `popsweep ask --space ...`",
            ))
        }
    };
    let source = format!("{} (study space)", dir.display());
    let space = if header.space.is_empty() {
        Space::default()
    } else {
        config::parse_space(&header.space, &source)?
    };
    let kind = SamplerKind::parse(&header.sampler).ok_or_else(|| {
        study_error(
            dir,
            &format!("unknown sampler `{}` in the journal", header.sampler),
        )
    })?;
    let study = Study::new(
        Storage::Journal(journal),
        space,
        kind,
        header.direction == "maximize",
        header.seed,
    )
    .map_err(Error::Run)?;
    Ok((study, header))
}

fn study_error(dir: &Path, message: &str) -> Error {
    Error::Config {
        file: dir.display().to_string(),
        line: None,
        field: "--study".into(),
        message: message.into(),
    }
}

/// What `ask` may say about a new study besides its space; `None` where not given.
struct StudyFlags {
    sampler: Option<String>,
    direction: Option<String>,
    seed: Option<u64>,
}

fn ask(dir: &Path, space: Option<&str>, flags: StudyFlags, n: usize) -> Result<()> {
    let sampler = flags.sampler.as_deref().unwrap_or("tpe");
    let direction = flags.direction.as_deref().unwrap_or("minimize");
    let seed = flags.seed.unwrap_or(0);
    let arg_error = |field: &str, message: String| Error::Config {
        file: "command line".into(),
        line: None,
        field: field.into(),
        message,
    };
    if SamplerKind::parse(sampler).is_none() {
        return Err(arg_error(
            "--sampler",
            format!(
                "unknown sampler `{sampler}` (known: {})",
                SamplerKind::NAMES
            ),
        ));
    }
    if direction != "minimize" && direction != "maximize" {
        return Err(arg_error(
            "--direction",
            format!("`{direction}` must be minimize or maximize"),
        ));
    }
    let new = match space {
        Some(arg) => {
            let path = Path::new(arg);
            let (text, source) = if path.is_file() {
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                (text, arg.to_string())
            } else {
                (arg.to_string(), "--space".to_string())
            };
            config::parse_space(&text, &source)?;
            Some(StudyHeader {
                direction: direction.into(),
                sampler: sampler.into(),
                seed,
                space: text,
            })
        }
        None => None,
    };
    let (mut study, header) = open_study(dir, new.as_ref())?;
    // Only the first ask defines the study: say so when a later one asks for something
    // else, rather than let a script believe its --sampler took effect.
    let ignored = [
        ("--sampler", flags.sampler, header.sampler.clone()),
        ("--direction", flags.direction, header.direction.clone()),
        (
            "--seed",
            flags.seed.map(|s| s.to_string()),
            header.seed.to_string(),
        ),
    ];
    for (flag, given, kept) in ignored {
        if let Some(given) = given.filter(|g| *g != kept) {
            eprintln!(
                "note: {}: the study keeps `{kept}` from its first ask; {flag} `{given}` is not used",
                dir.display()
            );
        }
    }
    if new.is_some_and(|n| n.space != header.space) {
        eprintln!(
            "note: {}: the study keeps the space of its first ask; --space is not used",
            dir.display()
        );
    }
    let mut out = String::new();
    for t in study.ask_batch(n)? {
        let line = TrialLine {
            trial: t.number,
            value: None,
            params: &t.params,
        };
        out.push_str(&serde_json::to_string(&line).expect("trial lines serialize"));
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// `popsweep bench`'s arguments (the interface of ../shared/bench/peer_bench.py).
#[derive(clap::Args)]
struct BenchArgs {
    /// Layer widths, input first, classes last.
    #[arg(long, default_value = "784,256,256,10")]
    dims: String,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Population size P.
    #[arg(long, default_value_t = 64)]
    pop: usize,
    /// sgd (momentum 0.9, weight decay 1e-4) or adamw (betas 0.9/0.999, weight decay 1e-2).
    #[arg(long, default_value = "sgd")]
    optimizer: String,
    /// Timed steps per repetition.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Worker threads. Default: one per core.
    #[arg(long)]
    threads: Option<usize>,
    /// Ragged population: hidden widths drawn from this list (with --depths).
    #[arg(long)]
    widths_from: Option<String>,
    /// Ragged population: depth range, e.g. 1-3.
    #[arg(long, default_value = "1-3")]
    depths: String,
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Where to run: auto (the GPU if one is usable), cpu or cuda.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
}

fn bench_command(a: BenchArgs) -> Result<()> {
    let arg_error = |field: &str, message: String| Error::Config {
        file: "command line".into(),
        line: None,
        field: field.into(),
        message,
    };
    let list = |field: &str, text: &str| -> Result<Vec<usize>> {
        text.split(',')
            .map(|v| v.trim().parse::<usize>().ok().filter(|&x| x > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                arg_error(
                    field,
                    format!("`{text}` is not a list of positive integers"),
                )
            })
    };
    let dims = list("--dims", &a.dims)?;
    if dims.len() < 2 {
        return Err(arg_error(
            "--dims",
            "give at least input and classes, e.g. 64,10".into(),
        ));
    }
    let optimizer = OptimizerKind::parse(&a.optimizer).ok_or_else(|| {
        arg_error(
            "--optimizer",
            format!("`{}`: expected sgd or adamw", a.optimizer),
        )
    })?;
    if a.batch == 0 || a.pop == 0 || a.steps == 0 {
        return Err(arg_error(
            "--batch/--pop/--steps",
            "must be at least 1".into(),
        ));
    }
    let ragged = match &a.widths_from {
        None => None,
        Some(w) => {
            let widths = list("--widths-from", w)?;
            let range = a
                .depths
                .split_once('-')
                .and_then(|(lo, hi)| Some((lo.parse::<usize>().ok()?, hi.parse::<usize>().ok()?)))
                .filter(|&(lo, hi)| lo <= hi)
                .ok_or_else(|| {
                    arg_error(
                        "--depths",
                        format!("`{}` is not a range like 1-3", a.depths),
                    )
                })?;
            Some((widths, range))
        }
    };
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = crate::bench::BenchConfig {
        dims,
        batch: a.batch,
        pop: a.pop,
        steps: a.steps,
        warmup: a.warmup,
        reps: a.reps,
        threads,
        optimizer,
        ragged,
    };
    let r = run_bench(&config, a.backend)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&r).expect("bench results serialize")
        );
    } else {
        println!(
            "popsweep {} ({})  dims {:?}  batch {}  pop {}  {}: {:.3} ms/step, {:.0} model-samples/s, \
             {:.1} GFLOP/s = {:.0}% of the {:.1} GFLOP/s SGEMM ceiling",
            r.backend, r.device, r.dims, r.batch, r.pop, r.optimizer.name(), r.ms_per_step, r.model_samples_per_s, r.gflops,
            r.pct_of_ceiling, r.sgemm_ceiling_gflops
        );
    }
    Ok(())
}

/// The range test on the sweep's default model (3 seeds): `lr`'s range, a decade either
/// side of the suggestion.
fn lr_range_from_finder(sweep: &Sweep, train: &crate::data::Dataset) -> Result<(f64, f64)> {
    use crate::train::lr_finder::{range_test, RangeTest};
    let specs: Vec<_> = (0..3u64)
        .map(|seed| {
            crate::model::knobs::member_spec(
                &crate::space::Params::new(),
                &sweep.defaults,
                train.n_features,
                train.n_classes,
                crate::rng::derive_seed(sweep.seed, 0x1F00 + seed),
            )
        })
        .collect();
    let test = RangeTest {
        batch_size: sweep.batch_size,
        ..RangeTest::default()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let s = range_test(&test, &specs, train, threads).suggested_lr;
    if !(s.is_finite() && s > 0.0) {
        return Err(Error::Run(
            "lr_finder: the range test found no usable learning rate (the loss never fell); \
             give lr a range yourself"
                .into(),
        ));
    }
    Ok((s / 10.0, s * 10.0))
}

/// `space` with `lr` (added or replaced) log-uniform over `[low, high]`.
fn set_lr_range(space: &Space, low: f64, high: f64) -> Result<Space> {
    use crate::space::{Distribution, ParamDef};
    let mut params: Vec<ParamDef> = space
        .params
        .iter()
        .filter(|p| p.name != "lr")
        .cloned()
        .collect();
    params.push(ParamDef {
        name: "lr".into(),
        dist: Distribution::Float {
            low,
            high,
            log: true,
            step: None,
        },
        condition: space
            .params
            .iter()
            .find(|p| p.name == "lr")
            .and_then(|p| p.condition.clone()),
    });
    Space::new(params).map_err(|e| Error::Run(format!("lr_finder: {}", e.message)))
}

fn report(dir: &Path, json: bool) -> Result<()> {
    use crate::report::{diagnostics::overfitting, html, importance::importance, run::RunData};
    let run = RunData::load(dir)?;
    let metric = &run.sweep.metric;
    let imp = importance(&run.sweep.space, &run.observations(), metric.maximize);
    let flags = overfitting(&run.trials);
    let page = dir.join("report.html");
    std::fs::write(&page, html::render(&run)).map_err(|e| Error::io(&page, e))?;
    if json {
        let out = serde_json::json!({
            "report": page.display().to_string(),
            "summary": run.summary,
            "importance": imp,
            "overfitting": flags,
        });
        println!("{out}");
        return Ok(());
    }
    let states = |s: TrialState| run.trials.iter().filter(|t| t.state == s).count();
    println!(
        "run {}: sweep `{}`, {} trials ({} complete, {} pruned, {} failed), metric {}",
        dir.display(),
        run.sweep.name,
        run.trials.len(),
        states(TrialState::Complete),
        states(TrialState::Pruned),
        states(TrialState::Failed),
        metric.name
    );
    match &run.summary {
        Some(s) => {
            let f = |k: &str| s["best"][k].as_f64().unwrap_or(f64::NAN);
            let test = match s["best"]["test"].as_f64() {
                Some(t) => format!("{t:.4} on test"),
                None => "no held-out test split (an external program's own)".into(),
            };
            let drained = match s["drain_epochs"].as_u64() {
                Some(n) => format!(" ({n} of them draining past ASHA's stop)"),
                None => String::new(),
            };
            println!(
                "best trial {}: {:.4} on validation, {test}; {} epochs trained{drained}, utilisation {:.2}",
                s["best"]["trial"],
                f("val"),
                s["epochs_total"],
                s["utilisation"].as_f64().unwrap_or(f64::NAN)
            );
        }
        None => println!("no summary.json: the run did not finish, so there is no test score"),
    }
    println!("importance (PED-ANOVA, Spearman; + means higher does better):");
    for m in &imp {
        println!("  {:<14} {:.3}  {:+.2}", m.param, m.ped_anova, m.spearman);
    }
    if flags.is_empty() {
        println!("overfitting: no trial flagged");
    } else {
        println!("overfitting: {} trial(s) flagged, worst:", flags.len());
        for f in flags.iter().take(3) {
            println!(
                "  trial {}: gap {:.3}, validation loss {:+.0}% above its minimum (epoch {}); try {}",
                f.trial,
                f.gap,
                100.0 * f.val_loss_rise,
                f.best_epoch,
                f.advice
            );
        }
    }
    println!("top trials:");
    for t in run.ranked().iter().take(5) {
        let params: Vec<String> = t.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "  trial {:>4} {:<9} {:>3} epochs  {:.4}  {}",
            t.number,
            t.state.name(),
            t.epochs,
            t.last_value().unwrap_or(f64::NAN),
            params.join(" ")
        );
    }
    println!("report: {}", page.display());
    Ok(())
}

fn lr_find(a: LrFindArgs) -> Result<()> {
    use crate::report::plot::{Chart, Series};
    use crate::train::lr_finder::{range_test, RangeTest};
    let bad = |field: &str, message: String| Error::Config {
        file: "command line".into(),
        line: None,
        field: field.into(),
        message,
    };
    if !(a.min_lr > 0.0 && a.min_lr < a.max_lr && a.max_lr.is_finite()) {
        return Err(bad(
            "--min-lr/--max-lr",
            format!("need 0 < min < max, got {} and {}", a.min_lr, a.max_lr),
        ));
    }
    if a.steps < 3 || a.seeds == 0 {
        return Err(bad(
            "--steps/--seeds",
            "need at least 3 steps and 1 seed".into(),
        ));
    }
    let (sweep, source) = load_sweep(&a.sweep)?;
    let (tuning, _sealed, data_name) = load_data(&sweep)?;
    let test = RangeTest {
        min_lr: a.min_lr,
        max_lr: a.max_lr,
        steps: a.steps,
        batch_size: a.batch_size.unwrap_or(sweep.batch_size).max(1),
        ..RangeTest::default()
    };
    let specs: Vec<_> = (0..a.seeds as u64)
        .map(|seed| {
            crate::model::knobs::member_spec(
                &crate::space::Params::new(),
                &sweep.defaults,
                tuning.train.n_features,
                tuning.train.n_classes,
                crate::rng::derive_seed(sweep.seed, 0x1F00 + seed),
            )
        })
        .collect();
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let result = range_test(&test, &specs, &tuning.train, threads);
    let dir = a
        .out
        .unwrap_or_else(|| default_run_dir(&format!("lr-find-{}", sweep.name)));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut csv = String::from("member,seed,step,lr,loss,smoothed\n");
    for (m, curve) in result.members.iter().enumerate() {
        for p in &curve.points {
            csv.push_str(&format!(
                "{m},{},{},{},{},{}\n",
                curve.seed, p.step, p.lr, p.loss, p.smoothed
            ));
        }
    }
    let first_loss = result
        .members
        .iter()
        .filter_map(|m| m.points.first().map(|p| p.smoothed))
        .fold(f64::NEG_INFINITY, f64::max);
    let chart = Chart {
        title: &format!("learning-rate range test: {} ({})", sweep.name, data_name),
        x_label: "learning rate",
        y_label: "smoothed training loss",
        x_log: true,
        y_range: Some((0.0, 1.5 * first_loss)),
        markers: vec![
            (
                result.steepest_lr,
                format!("steepest {:.2e}", result.steepest_lr),
            ),
            (
                result.min_div10_lr,
                format!("min/10 {:.2e}", result.min_div10_lr),
            ),
        ],
        legend: true,
    };
    let series: Vec<Series> = result
        .members
        .iter()
        .map(|m| Series {
            label: format!("seed {}", m.seed),
            points: m.points.iter().map(|p| (p.lr, p.smoothed)).collect(),
            dots: false,
        })
        .collect();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    };
    write("lr_find.csv", &csv)?;
    write("lr_find.svg", &chart.svg(&series))?;
    let json = serde_json::to_string(&result).expect("range test results serialize");
    write("lr_find.json", &json)?;
    let s = result.suggested_lr;
    if a.json {
        println!("{json}");
        return Ok(());
    }
    println!(
        "range test on {data_name} ({source}): {} seed(s), lr {:.0e} → {:.0e} over {} steps",
        a.seeds, a.min_lr, a.max_lr, a.steps
    );
    for m in &result.members {
        println!(
            "  seed {}: {} steps ({}), steepest descent at {}, minimum at {}",
            m.seed,
            m.points.len(),
            m.stopped,
            m.steepest_lr.map_or("-".into(), |v| format!("{v:.3e}")),
            m.min_loss_lr.map_or("-".into(), |v| format!("{v:.3e}"))
        );
    }
    println!(
        "suggested lr {s:.3e} (minimum ÷ 10; the steepest descent is at {:.3e})",
        result.steepest_lr
    );
    println!(
        "sweep-file snippet:\n  lr:\n    distribution: log_uniform_values\n    min: {:.3e}\n    max: {:.3e}",
        s / 10.0,
        s * 10.0
    );
    println!(
        "curve: {}/lr_find.svg, lr_find.csv, lr_find.json",
        dir.display()
    );
    Ok(())
}

/// The CPU bench, or the GPU bench when `choice` selects the GPU.
fn run_bench(
    config: &crate::bench::BenchConfig,
    choice: BackendChoice,
) -> Result<crate::bench::BenchResult> {
    if choice == BackendChoice::Cpu {
        return Ok(crate::bench::run(config));
    }
    #[cfg(feature = "cuda")]
    {
        match (crate::backend::cuda::CudaBackend::open(), choice) {
            (Ok(gpu), _) => return crate::bench::run_cuda(config, &gpu),
            (Err(why), BackendChoice::Cuda) => {
                return Err(Error::Device(format!("--backend cuda: {why}")))
            }
            (Err(why), _) => eprintln!("backend: auto chose cpu ({why})"),
        }
    }
    #[cfg(not(feature = "cuda"))]
    if choice == BackendChoice::Cuda {
        return Err(Error::Device(
            "--backend cuda: this binary was built without the cuda feature".into(),
        ));
    }
    Ok(crate::bench::run(config))
}

/// A trial as the study commands print it.
#[derive(serde::Serialize)]
struct TrialLine<'a> {
    trial: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    params: &'a crate::space::Params,
}

fn tell(dir: &Path, trial: usize, value: Option<f64>, state: Option<&str>) -> Result<()> {
    let outcome = match (value, state) {
        (Some(v), _) => {
            if !v.is_finite() {
                // As Optuna does: the study keeps going, the trial is recorded failed.
                eprintln!("note: trial {trial}: the value {v} is not finite; recorded failed");
            }
            Outcome::Complete(v)
        }
        (None, Some("pruned")) => Outcome::Pruned,
        (None, Some("failed")) => Outcome::Failed,
        (None, other) => {
            return Err(Error::Config {
                file: "command line".into(),
                line: None,
                field: "--state".into(),
                message: format!("`{}` must be pruned or failed", other.unwrap_or_default()),
            })
        }
    };
    open_study(dir, None)?
        .0
        .tell(trial, outcome)
        .map_err(|e| study_error(dir, &e.to_string()))
}

fn best(dir: &Path) -> Result<()> {
    match open_study(dir, None)?.0.best()? {
        Some(t) => {
            let line = TrialLine {
                trial: t.number,
                value: t.value,
                params: &t.params,
            };
            println!(
                "{}",
                serde_json::to_string(&line).expect("trial lines serialize")
            );
            Ok(())
        }
        None => Err(Error::Run(format!(
            "{}: no complete trial yet",
            dir.display()
        ))),
    }
}

/// The sweep at `path`, or the embedded default; and how to name it.
fn load_sweep(path: &Option<PathBuf>) -> Result<(Sweep, String)> {
    Ok(match path {
        Some(path) => (config::load(path)?, path.display().to_string()),
        None => (
            config::parse(config::DEFAULT_SWEEP, config::DEFAULT_SWEEP_NAME)?,
            format!("{} (embedded)", config::DEFAULT_SWEEP_NAME),
        ),
    })
}

/// One line per check; the diagnosis when one fails.
fn describe_sanity(r: &SanityReport) -> String {
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

fn sanity(
    sweep_path: Option<PathBuf>,
    steps: usize,
    json: bool,
    choice: BackendChoice,
) -> Result<()> {
    let (sweep, _) = load_sweep(&sweep_path)?;
    let (tuning, _sealed, _) = load_data(&sweep)?;
    let (backend, chosen) = backend::select(choice, None)?;
    if let Some(line) = chosen {
        eprintln!("{line}");
    }
    let report = sanity_check(backend.as_ref(), &tuning.train, &sweep.defaults, steps)?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("reports serialize")
        );
    } else {
        println!("{}", describe_sanity(&report));
    }
    if report.passed {
        Ok(())
    } else {
        Err(Error::Run("the sanity preflight failed (see above)".into()))
    }
}

/// A sweep read for `run` or `resume`: the validated sweep, where it came from (for
/// messages), its text (kept in the run directory) and the directory its relative paths
/// (data, program) are taken from.
struct Loaded {
    sweep: Sweep,
    source: String,
    text: String,
    workdir: PathBuf,
}

fn load_for_run(path: Option<PathBuf>) -> Result<Loaded> {
    let (sweep, source) = load_sweep(&path)?;
    let (text, workdir) = match &path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            (text, dir.canonicalize().map_err(|e| Error::io(dir, e))?)
        }
        None => (config::DEFAULT_SWEEP.to_string(), PathBuf::from(".")),
    };
    Ok(Loaded {
        sweep,
        source,
        text,
        workdir,
    })
}

/// Where a built-in sweep writes: a fresh run directory (default `runs/<name>-<time>/`),
/// or one being resumed with the trials it already finished.
enum Target {
    Fresh(Option<PathBuf>),
    Resume(PathBuf, BTreeMap<usize, TrialRecord>),
}

fn run(
    loaded: Loaded,
    target: Target,
    (choice, threads): (Option<BackendChoice>, Option<usize>),
    (quiet, json): (bool, bool),
    preflight: bool,
) -> Result<()> {
    let Loaded {
        sweep,
        source,
        text: sweep_text,
        workdir,
    } = loaded;
    if let (Some(reason), false) = (&sweep.auto_reason, quiet) {
        println!("method auto chose {reason}");
    }
    if let Some(ext) = &sweep.external {
        let Target::Fresh(out) = target else {
            unreachable!("resume continues external sweeps through run_external")
        };
        let run_dir = out.unwrap_or_else(|| default_run_dir(&sweep.name));
        if !quiet {
            println!(
                "sweep `{}` from {source}: {} trials of `{}`, {} at once{}",
                sweep.name,
                sweep.run_cap,
                ext.command.join(" "),
                ext.parallel,
                ext.stopping.as_ref().map_or(String::new(), |s| format!(
                    ", hyperband bands at {:?} iterations",
                    s.bands.iter().take(6).collect::<Vec<_>>()
                ))
            );
        }
        return run_external(
            &sweep,
            &run_dir,
            Some((&sweep_text, &workdir)),
            (quiet, json),
        );
    }
    let choice = choice.or(sweep.backend).unwrap_or(BackendChoice::Auto);
    let (backend, chosen) = backend::select(choice, threads)?;
    let backend = backend.as_ref();
    if let (Some(line), false) = (chosen, quiet) {
        println!("{line}");
    }
    if let Some(folds) = sweep.cv {
        let Target::Fresh(out) = target else {
            return Err(Error::Run(
                "a nested cross-validation is not resumable; start it again with `popsweep run`"
                    .into(),
            ));
        };
        let run_dir = out.unwrap_or_else(|| default_run_dir(&sweep.name));
        return run_cv(&sweep, &sweep_text, folds, backend, &run_dir, (quiet, json));
    }
    let (tuning, held_out, data_name) = load_data(&sweep)?;
    let resuming = matches!(target, Target::Resume(..));
    if preflight && !resuming {
        let report = sanity_check(backend, &tuning.train, &sweep.defaults, 500)?;
        if !quiet || !report.passed {
            println!("{}", describe_sanity(&report));
        }
        if !report.passed {
            return Err(Error::Run(
                "the sanity preflight failed (see above); fix the pipeline, or pass --no-sanity"
                    .into(),
            ));
        }
    }
    let mut sweep = sweep;
    if sweep.lr_finder {
        let (low, high) = lr_range_from_finder(&sweep, &tuning.train)?;
        if !quiet {
            println!(
                "lr_finder: the range test suggests lr {:.3e}; lr is tuned log-uniformly over [{low:.3e}, {high:.3e}]",
                (low * high).sqrt()
            );
        }
        sweep.space = set_lr_range(&sweep.space, low, high)?;
    }
    // Before the run directory exists, so a stop request is never lost to the default
    // handler once there is something to resume.
    crate::interrupt::install();
    let (run_dir, mut log, known) = match target {
        Target::Fresh(out) => {
            let run_dir = out.unwrap_or_else(|| default_run_dir(&sweep.name));
            let log = RunLog::create(&run_dir)?;
            // The sweep file goes with the results, so `popsweep report` can read the
            // space and `popsweep resume` can continue it (data paths from `workdir`).
            log.write_text("sweep.yaml", &sweep_text)?;
            log.write_text("workdir", &format!("{}\n", workdir.display()))?;
            (run_dir, log, BTreeMap::new())
        }
        Target::Resume(dir, known) => (dir.clone(), RunLog::open_append(&dir)?, known),
    };
    if !quiet {
        let plans = bracket_plans(&sweep);
        let mut shape: Vec<String> = plans
            .iter()
            .map(|p| format!("{} trials, rungs at {:?} epochs", p.trials, p.rungs))
            .collect();
        if plans.is_empty() {
            shape.push(format!(
                "{} trials up to {} epochs, {}",
                sweep.run_cap,
                sweep.epochs,
                slot_schedule(&sweep, backend.idle_slots_cost_time())
            ));
        }
        println!(
            "sweep `{}` from {source}: {}; backend {}",
            sweep.name,
            shape.join(" | "),
            backend.name()
        );
        println!(
            "data: {data_name}, {} train / {} validation / {} test rows (test held out until the end)",
            tuning.train.len(),
            tuning.val.len(),
            held_out.len()
        );
    }
    let metric = sweep.metric.name.clone();
    let plans = bracket_plans(&sweep);
    let by_trials = matches!(
        sweep.schedule,
        Schedule::Asha { .. } | Schedule::Median { .. } | Schedule::Pbt(_)
    );
    let planned: f64 = plans.iter().map(planned_member_epochs).sum();
    let mut progress = SweepProgress::new(
        if by_trials {
            sweep.run_cap
        } else {
            plans.iter().map(|p| p.trials).sum()
        },
        (!by_trials).then_some(planned),
        sweep.metric.maximize,
    );
    let mut finished_before = 0;
    let mut on_progress = |p: &Progress| {
        let r = match (p, quiet) {
            (_, true) => return,
            (Progress::Rung(r), false) => r,
            (Progress::Tick(t), false) => {
                let done = t.complete + t.pruned + t.failed;
                progress.advance(done - finished_before, 0.0, true);
                finished_before = done;
                if let Some((n, v)) = t.leader {
                    progress.offer(n, v);
                }
                println!(
                    "epoch {} of the population: {} training, {} started; {} complete, {} pruned, {} failed ({:.1} s) {}",
                    t.tick, t.training, t.started, t.complete, t.pruned, t.failed, t.seconds,
                    progress.line(&metric)
                );
                return;
            }
        };
        let previous = r
            .rung
            .checked_sub(1)
            .map_or(0, |k| plans[r.bracket].rungs[k]);
        progress.advance(
            r.trained - r.continuing,
            (r.trained * (r.budget - previous)) as f64,
            false,
        );
        if let (Some((n, v)), true) = (r.leader, r.rung + 1 == r.rungs) {
            progress.offer(n, v);
        }
        {
            let leader = r.leader.map_or("no finite value".into(), |(t, v)| {
                format!("leader trial {t} {metric} {v:.4}")
            });
            let bracket = if r.brackets > 1 {
                format!("bracket {}/{} ", r.bracket + 1, r.brackets)
            } else {
                String::new()
            };
            println!(
                "{bracket}rung {}/{} ({} epoch{}): {} trained, {} continue, {} failed; {leader} ({:.1} s) {}",
                r.rung + 1,
                r.rungs,
                r.budget,
                if r.budget == 1 { "" } else { "s" },
                r.trained,
                r.continuing,
                r.failed,
                r.seconds,
                progress.line(&metric)
            );
        }
    };
    let outcome = run_sweep(
        &sweep,
        &tuning,
        held_out,
        backend,
        &mut log,
        &known,
        &mut on_progress,
    )
    .map_err(|e| match e {
        Error::Interrupted(_) => Error::Interrupted(format!(
            "interrupted; finished trials are kept in {dir}/; resume with: popsweep resume {dir}",
            dir = run_dir.display()
        )),
        other => other,
    })?;
    if json {
        let path = log.dir().join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let summary: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::Run(e.to_string()))?;
        println!("{summary}");
        return Ok(());
    }
    print_results(&sweep, &outcome, quiet);
    println!(
        "results: {}/ (trials.jsonl, summary.json)",
        log.dir().display()
    );
    Ok(())
}

/// Member-epochs a bracket will train if every survivor count is ⌊n/η⌋ (failures make
/// it less): the ETA's denominator.
fn planned_member_epochs(plan: &crate::sweep::BracketPlan) -> f64 {
    let eta = plan.halving.map_or(1, |h| h.eta);
    let (mut n, mut previous, mut work) = (plan.trials, 0, 0);
    for &budget in &plan.rungs {
        work += n * (budget - previous);
        previous = budget;
        n = (n / eta).max(1);
    }
    work as f64
}

/// Runs (with `fresh`: the sweep text and the programs' working directory, saved into
/// the run directory first) or resumes an external-program sweep.
fn run_external(
    sweep: &Sweep,
    run_dir: &Path,
    fresh: Option<(&str, &Path)>,
    (quiet, json): (bool, bool),
) -> Result<()> {
    let workdir = match fresh {
        Some((text, workdir)) => {
            std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
            if run_dir.join("trials.jsonl").exists() {
                return Err(Error::Config {
                    file: run_dir.display().to_string(),
                    line: None,
                    field: "--out".into(),
                    message: "this directory already holds a run; choose another (or `popsweep resume` it)".into(),
                });
            }
            let write = |name: &str, body: &str| {
                let p = run_dir.join(name);
                std::fs::write(&p, body).map_err(|e| Error::io(&p, e))
            };
            write("sweep.yaml", text)?;
            write("workdir", &format!("{}\n", workdir.display()))?;
            workdir.to_path_buf()
        }
        None => {
            let p = run_dir.join("workdir");
            let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            PathBuf::from(text.trim_end())
        }
    };
    match external::run(sweep, run_dir, &workdir, fresh.is_none(), quiet)? {
        external::Ending::Interrupted => Err(Error::Interrupted(format!(
            "interrupted; finished trials are kept in {dir}/; resume with: popsweep resume {dir}",
            dir = run_dir.display()
        ))),
        external::Ending::Finished(summary) => {
            if json {
                println!("{summary}");
            } else {
                let best = &summary["best"];
                let value = best["val"]
                    .as_f64()
                    .map_or("none".into(), |v| format!("{v:.4}"));
                // The same `name=value` form as a built-in sweep's best trial.
                let params = serde_json::from_value::<Params>(best["params"].clone())
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_else(|_| best["params"].to_string());
                let count = |state: &str| summary["trials"][state].as_u64().unwrap_or(0);
                println!(
                    "\nbest trial {}: {} {value}\n  params: {params}\ntrials: {} complete, {} pruned, {} failed",
                    best["trial"],
                    sweep.metric.name,
                    count("complete"),
                    count("pruned"),
                    count("failed"),
                );
                println!(
                    "results: {}/ (trials.jsonl, summary.json, trials/N/ logs)",
                    run_dir.display()
                );
            }
            Ok(())
        }
    }
}

/// The trials a stopped built-in run finished, from its `trials.jsonl` (a line torn by the
/// crash is reported and skipped: that trial runs again).
fn finished_records(run_dir: &Path) -> Result<BTreeMap<usize, TrialRecord>> {
    let path = run_dir.join("trials.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut known = BTreeMap::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<TrialRecord>(line) {
            Ok(r) => {
                known.insert(r.number, r);
            }
            Err(e) => eprintln!(
                "warning: {}:{}: skipped an unreadable trial line ({e}); that trial runs again",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(known)
}

/// Nested cross-validation: one line per outer fold, then the mean ± sd of the test scores.
fn run_cv(
    sweep: &Sweep,
    sweep_text: &str,
    (outer, inner): (usize, usize),
    backend: &dyn backend::Backend,
    run_dir: &Path,
    (quiet, json): (bool, bool),
) -> Result<()> {
    let (data, data_name) = load_dataset(sweep)?;
    let mut log = RunLog::create(run_dir)?;
    log.write_text("sweep.yaml", sweep_text)?;
    if !quiet {
        println!(
            "nested cross-validation of `{}`: {outer} outer × {inner} inner folds of {data_name} ({} rows), {} configurations × {} epochs, {} members in one population; backend {}",
            sweep.name,
            data.len(),
            sweep.run_cap,
            sweep.epochs,
            sweep.run_cap * outer * inner,
            backend.name()
        );
    }
    let metric = sweep.metric.name.clone();
    let mut on_fold = |f: &OuterFold| {
        if !quiet {
            println!(
                "outer fold {}/{outer}: best trial {} (inner {metric} {:.4}) → test accuracy {:.4} on {} rows",
                f.fold + 1,
                f.trial,
                f.inner_val,
                f.test_accuracy,
                f.test_rows
            );
        }
    };
    let summary = run_nested_cv(
        sweep,
        &data,
        (outer, inner),
        backend,
        &mut log,
        &mut on_fold,
    )?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&summary).expect("summary serializes")
        );
    } else {
        println!(
            "test accuracy over {outer} outer folds: {:.4} ± {:.4} (mean ± sd)",
            summary.test_accuracy_mean, summary.test_accuracy_sd
        );
        println!(
            "results: {}/ (trials.jsonl, summary.json)",
            run_dir.display()
        );
    }
    Ok(())
}

fn resume(run_dir: &Path, quiet: bool, json: bool) -> Result<()> {
    let path = run_dir.join("sweep.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let workdir_file = run_dir.join("workdir");
    let workdir = match std::fs::read_to_string(&workdir_file) {
        Ok(w) => PathBuf::from(w.trim_end()),
        Err(e) => return Err(Error::io(&workdir_file, e)),
    };
    let sweep = config::parse_at(&text, &path.display().to_string(), &workdir)?;
    if sweep.external.is_none() {
        let known = finished_records(run_dir)?;
        if !quiet {
            println!(
                "resuming `{}` in {}: {} trial(s) finished before, kept as recorded",
                sweep.name,
                run_dir.display(),
                known.len()
            );
        }
        let loaded = Loaded {
            sweep,
            source: path.display().to_string(),
            text,
            workdir,
        };
        let target = Target::Resume(run_dir.to_path_buf(), known);
        return run(loaded, target, (None, None), (quiet, json), false);
    }
    if !run_dir.join("journal.jsonl").is_file() {
        return Err(Error::Config {
            file: run_dir.display().to_string(),
            line: None,
            field: "journal.jsonl".into(),
            message: "no journal here: not a run directory of an external sweep".into(),
        });
    }
    if !quiet {
        println!("resuming `{}` in {}", sweep.name, run_dir.display());
    }
    run_external(&sweep, run_dir, None, (quiet, json))
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
    }
    let drained = match s.drain_epochs {
        0 => String::new(),
        n => format!(" ({n} of them draining past ASHA's stop)"),
    };
    println!(
        "trials: {} complete, {} pruned, {} failed; {} epochs trained{drained} in {:.1} s",
        s.trials["complete"],
        s.trials["pruned"],
        s.trials["failed"],
        s.epochs_total,
        s.wall_seconds
    );
    if let (Some(trial), Some(target)) = (s.target_reached_by, metric.target) {
        println!(
            "trial {trial} reached the target {} {target}: no trial started after it",
            metric.name
        );
    }
}

/// A slot schedule in words, for the sweep's header line (the bracket schedules show their
/// brackets instead); `idle_slots_cost_time`: the backend's, which `drain: auto` follows.
fn slot_schedule(sweep: &Sweep, idle_slots_cost_time: bool) -> String {
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
