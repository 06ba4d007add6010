//! `run` and `resume`: a sweep from its file to its run directory (built-in, external
//! program or nested cross-validation), with the progress it prints.

use super::print::{describe_sanity, print_results, slot_schedule};
use crate::backend::{self, BackendChoice};
use crate::config::{self, Schedule, Sweep};
use crate::error::{Error, Result};
use crate::external;
use crate::limits;
use crate::report::progress::SweepProgress;
use crate::report::run_files::{default_run_dir, RunFiles};
use crate::space::{Params, Space};
use crate::storage::{OpsIn, RunStorage, Storage};
use crate::sweep::{
    bracket_plans, load_data, load_dataset, run_nested_cv, run_sweep, OuterFold, Progress,
};
use crate::train::sanity::sanity_check;
use std::path::{Path, PathBuf};

/// The sweep at `path`, or the embedded default; and how to name it.
pub(super) fn load_sweep(path: &Option<PathBuf>) -> Result<(Sweep, String)> {
    Ok(match path {
        Some(path) => (config::load(path)?, path.display().to_string()),
        None => (
            config::parse(config::DEFAULT_SWEEP, config::DEFAULT_SWEEP_NAME)?,
            format!("{} (embedded)", config::DEFAULT_SWEEP_NAME),
        ),
    })
}

/// A sweep read for `run` or `resume`: the validated sweep, where it came from (for
/// messages), its text (kept in the run directory) and the directory its relative paths
/// (data, program) are taken from.
pub(super) struct Loaded {
    pub(super) sweep: Sweep,
    pub(super) source: String,
    pub(super) text: String,
    pub(super) workdir: PathBuf,
}

pub(super) fn load_for_run(path: Option<PathBuf>) -> Result<Loaded> {
    // Read once: the text validated is the text kept in the run directory, even if the
    // file changes meanwhile.
    let (sweep, source, text, workdir) = match &path {
        Some(p) => {
            let text = limits::read_input_text(p, "sweep", limits::MAX_SWEEP_FILE_BYTES)?;
            let source = p.display().to_string();
            let sweep = config::parse_at(&text, &source, p.parent().unwrap_or(Path::new("")))?;
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let workdir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
            (sweep, source, text, workdir)
        }
        None => {
            let (sweep, source) = load_sweep(&None)?;
            (
                sweep,
                source,
                config::DEFAULT_SWEEP.to_string(),
                PathBuf::from("."),
            )
        }
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
pub(super) enum Target {
    Fresh(Option<PathBuf>),
    /// A stopped built-in run, its storage opened (which holds the trials it finished).
    Resume(PathBuf, Box<RunStorage>),
    /// A worker of a study shared in a database, with a fresh run directory of its own.
    Shared(Option<PathBuf>, super::workers::SharedStudy),
}

pub(super) fn run(
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
    // A warm start that cannot be used is refused before the run directory exists.
    crate::sweep::warm::earlier_trials(&sweep)?;
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
    let sweep = crate::sweep::with_data_image(sweep, &tuning.train);
    crate::sweep::check_resources(&sweep, &tuning, backend)?;
    let resuming = matches!(target, Target::Resume(..));
    let sweep = prepare(sweep, &tuning.train, backend, preflight && !resuming, quiet)?;
    // Before the run directory exists, so a stop request is never lost to the default
    // handler once there is something to resume.
    crate::interrupt::install();
    let shared = matches!(target, Target::Shared(..));
    let (run_dir, storage) = open_target(target, &sweep, &sweep_text, &workdir)?;
    let files = RunFiles::new(&run_dir);
    if !quiet {
        println!(
            "sweep `{}` from {source}: {}; backend {}",
            sweep.name,
            shape(&sweep, backend.idle_slots_cost_time()),
            backend.name()
        );
        println!(
            "data: {data_name}, {} train / {} validation / {} test rows (test held out until the end)",
            tuning.train.len(),
            tuning.val.len(),
            held_out.len()
        );
    }
    let mut printer = ProgressPrinter::new(&sweep, !quiet, RunFiles::new(&run_dir));
    let mut on_progress = |p: &Progress| printer.show(p);
    let outcome = run_sweep(
        &sweep,
        &tuning,
        held_out,
        backend,
        storage,
        &files,
        &mut on_progress,
    )
    // A worker does not resume its run directory: it rejoins its study.
    .map_err(|e| if shared { e } else { resumable(e, &run_dir) })?;
    // The summary says how it ended; a line of its progress would only be stale.
    let _ = std::fs::remove_file(run_dir.join(crate::report::run_files::PROGRESS));
    if shared {
        super::workers::finish(&run_dir, &outcome, quiet)?;
    }
    if json {
        let path = files.dir().join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let summary: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::Run(e.to_string()))?;
        println!("{summary}");
        return Ok(());
    }
    print_results(&sweep, &outcome, quiet);
    println!(
        "results: {}/ (trials.jsonl, summary.json)",
        files.dir().display()
    );
    Ok(())
}

/// ASHA's and median stopping's slots where the file does not set them, on a backend that
/// trains a few members at a time (the CPU): two per concurrent member, if that is fewer
/// than the default ⌈run_cap/3⌉. More slots add no throughput there — each trial only
/// trains slower — while a good trial shows later and the sampler hears of results later;
/// two per thread keep every thread busy when members differ in cost. Measured on the MNIST
/// race (docs/race.md): 4 slots instead of 8 showed validation 0.975 after 14 s instead of
/// 27 s, and ended sooner. Returns the line that says so.
fn size_slots(sweep: &mut Sweep, backend: &dyn backend::Backend) -> Option<String> {
    let threads = backend
        .concurrent_members()
        .filter(|_| !sweep.population_given)?;
    let cap = 2 * threads;
    match &mut sweep.schedule {
        Schedule::Asha { slots, .. } | Schedule::Median { slots, .. } if *slots > cap => {
            let default = std::mem::replace(slots, cap);
            Some(format!(
                "slots: {cap}, two per {} thread (not ⌈run_cap/3⌉ = {default}: more would \
                 only slow each trial); scheduler.population sets them",
                backend.name()
            ))
        }
        _ => None,
    }
}

/// Before a sweep trains: the sanity preflight (`check`: a fresh sweep), then, with
/// `lr_finder`, the range test that sets the learning rate's range, and the slots the file
/// left to the backend (a resume too, so that it replays the same slots).
fn prepare(
    mut sweep: Sweep,
    train: &crate::data::Dataset,
    backend: &dyn backend::Backend,
    check: bool,
    quiet: bool,
) -> Result<Sweep> {
    if check {
        let report = sanity_check(backend, train, &sweep.defaults, 500)?;
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
    if sweep.lr_finder {
        let (low, high) = lr_range_from_finder(&sweep, train)?;
        if !quiet {
            println!(
                "lr_finder: the range test suggests lr {:.3e}; lr is tuned log-uniformly over [{low:.3e}, {high:.3e}]",
                (low * high).sqrt()
            );
        }
        sweep.space = set_lr_range(&sweep.space, low, high)?;
    }
    if let (Some(line), false) = (size_slots(&mut sweep, backend), quiet) {
        println!("{line}");
    }
    Ok(sweep)
}

/// The run directory and its storage: a fresh one (which keeps the sweep file, so
/// `report` can read the space and `resume` can continue it, with data paths from
/// `workdir`), or the one being resumed with the trials it finished.
fn open_target(
    target: Target,
    sweep: &Sweep,
    sweep_text: &str,
    workdir: &Path,
) -> Result<(PathBuf, Box<dyn Storage>)> {
    let fresh_dir = |out: Option<PathBuf>| -> Result<PathBuf> {
        let run_dir = out.unwrap_or_else(|| default_run_dir(&sweep.name));
        let files = RunFiles::new(&run_dir);
        files.write_text("sweep.yaml", sweep_text)?;
        files.write_text("workdir", &format!("{}\n", workdir.display()))?;
        Ok(run_dir)
    };
    match target {
        Target::Fresh(out) => {
            let run_dir = out.unwrap_or_else(|| default_run_dir(&sweep.name));
            let storage = RunStorage::create(&run_dir, OpsIn::Memory)?;
            Ok((fresh_dir(Some(run_dir))?, Box::new(storage)))
        }
        Target::Resume(dir, storage) => Ok((dir, storage)),
        // The study is opened first: a refused database leaves no run directory behind.
        Target::Shared(out, shared) => {
            let run_dir = out.unwrap_or_else(|| default_run_dir(&sweep.name));
            if run_dir.join("trials.jsonl").exists() {
                return Err(Error::Config {
                    file: run_dir.display().to_string(),
                    line: None,
                    field: "--out".into(),
                    message: "this directory already holds a run; choose another".into(),
                });
            }
            let storage = super::workers::open_shared(&shared, sweep, sweep_text)?;
            std::fs::create_dir_all(&run_dir).map_err(|e| Error::io(&run_dir, e))?;
            RunFiles::new(&run_dir).write_text(super::workers::STUDY_NAME_FILE, &shared.name)?;
            Ok((fresh_dir(Some(run_dir))?, Box::new(storage)))
        }
    }
}

/// The sweep's shape in one line: its brackets' trials and rungs, or its slot schedule.
fn shape(sweep: &Sweep, idle_slots_cost_time: bool) -> String {
    let plans = bracket_plans(sweep);
    if plans.is_empty() {
        return format!(
            "{} trials up to {} epochs, {}",
            sweep.run_cap,
            sweep.epochs,
            slot_schedule(sweep, idle_slots_cost_time)
        );
    }
    plans
        .iter()
        .map(|p| format!("{} trials, rungs at {:?} epochs", p.trials, p.rungs))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Prints a line per closed rung (bracket schedules) or per report of the population's
/// clock (slot schedules), each with the progress so far and an ETA.
struct ProgressPrinter {
    metric: String,
    plans: Vec<crate::sweep::BracketPlan>,
    progress: SweepProgress,
    /// Trials finished at the last clock report.
    finished_before: usize,
    /// `train.epoch_fraction`: the budget unit, printed as such when below 1.
    unit: f64,
    /// When the last line inside a rung was printed: at most one per
    /// [`EPOCH_LINE_SECONDS`], so fast epochs do not flood the terminal.
    last_epoch_line: std::time::Instant,
    /// Print the lines (not under `--quiet`); each also goes to the run directory's
    /// `progress.json`, which `popsweep dashboard` shows while the sweep runs.
    print: bool,
    files: RunFiles,
}

/// Seconds between progress lines inside a rung (each epoch still prints when slower).
const EPOCH_LINE_SECONDS: f64 = 2.0;

/// `1 epoch`, `9 epochs`, or, when the unit is a fraction of a pass, `3 units of 0.25 epoch`.
fn budget_units(n: usize, unit: f64) -> String {
    match (unit < 1.0, n == 1) {
        (false, true) => "1 epoch".into(),
        (false, false) => format!("{n} epochs"),
        (true, true) => format!("1 unit of {unit} epoch"),
        (true, false) => format!("{n} units of {unit} epoch"),
    }
}

impl ProgressPrinter {
    fn new(sweep: &Sweep, print: bool, files: RunFiles) -> Self {
        let plans = bracket_plans(sweep);
        let by_trials = matches!(
            sweep.schedule,
            Schedule::Asha { .. } | Schedule::Median { .. } | Schedule::Pbt(_)
        );
        let planned: f64 = plans.iter().map(planned_member_epochs).sum();
        let progress = SweepProgress::new(
            if by_trials {
                sweep.run_cap
            } else {
                plans.iter().map(|p| p.trials).sum()
            },
            (!by_trials).then_some(planned),
            sweep.metric.maximize,
        );
        ProgressPrinter {
            metric: sweep.metric.name.to_string(),
            plans,
            progress,
            finished_before: 0,
            unit: sweep.epoch_fraction,
            last_epoch_line: std::time::Instant::now(),
            print,
            files,
        }
    }

    /// One progress line: printed, and kept as the run's latest (a failure to write it
    /// costs the dashboard its progress line, never the sweep).
    fn emit(&self, line: String) {
        let _ = self.files.write_progress(&line);
        if self.print {
            println!("{line}");
        }
    }

    fn show(&mut self, p: &Progress) {
        let seen = match p {
            Progress::Rung(r) => r.best_seen,
            Progress::Epoch(e) => e.best_seen,
            Progress::Tick(t) => t.best_seen,
        };
        let unit = self.unit;
        self.progress.seen(seen.map(|s| {
            let epochs = (s.units as f64 * unit * 100.0).round() / 100.0;
            format!("{:.4} (trial {} at {epochs} epochs)", s.value, s.trial)
        }));
        let (metric, progress) = (&self.metric, &mut self.progress);
        let r = match p {
            Progress::Rung(r) => r,
            Progress::Epoch(e) => {
                progress.partial((e.training * (e.units - e.previous)) as f64);
                if self.last_epoch_line.elapsed().as_secs_f64() < EPOCH_LINE_SECONDS {
                    return;
                }
                self.last_epoch_line = std::time::Instant::now();
                let bracket = match e.brackets {
                    1 => String::new(),
                    n => format!("bracket {}/{n} ", e.bracket + 1),
                };
                let line = format!(
                    "  {bracket}rung {}/{} ({}): at {}, {} trials training ({:.1} s) {}",
                    e.rung + 1,
                    e.rungs,
                    budget_units(e.budget, self.unit),
                    e.units,
                    e.training,
                    e.seconds,
                    progress.line(metric)
                );
                self.emit(line);
                return;
            }
            Progress::Tick(t) => {
                let done = t.complete + t.pruned + t.failed;
                progress.advance(done - self.finished_before, 0.0, true);
                self.finished_before = done;
                if let Some((n, v)) = t.leader {
                    progress.offer(n, v);
                }
                let line = format!(
                    "epoch {} of the population: {} training, {} started; {} complete, {} pruned, {} failed ({:.1} s) {}",
                    t.tick, t.training, t.started, t.complete, t.pruned, t.failed, t.seconds,
                    progress.line(metric)
                );
                self.emit(line);
                return;
            }
        };
        let previous = r
            .rung
            .checked_sub(1)
            .map_or(0, |k| self.plans[r.bracket].rungs[k]);
        progress.advance(
            r.trained - r.continuing,
            (r.trained * (r.budget - previous)) as f64,
            false,
        );
        if let (Some((n, v)), true) = (r.leader, r.rung + 1 == r.rungs) {
            progress.offer(n, v);
        }
        let leader = r.leader.map_or("no finite value".into(), |(t, v)| {
            format!("leader trial {t} {metric} {v:.4}")
        });
        let bracket = if r.brackets > 1 {
            format!("bracket {}/{} ", r.bracket + 1, r.brackets)
        } else {
            String::new()
        };
        self.last_epoch_line = std::time::Instant::now();
        let line = format!(
            "{bracket}rung {}/{} ({}): {} trained, {} continue, {} failed; {leader} ({:.1} s) {}",
            r.rung + 1,
            r.rungs,
            budget_units(r.budget, self.unit),
            r.trained,
            r.continuing,
            r.failed,
            r.seconds,
            progress.line(metric)
        );
        self.emit(line);
    }
}

/// Member-epochs a bracket will train if every survivor count is ⌊n/η⌋ (failures make
/// it less): the ETA's denominator.
pub(super) fn planned_member_epochs(plan: &crate::sweep::BracketPlan) -> f64 {
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
pub(super) fn run_external(
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
    match external::run(sweep, run_dir, &workdir, fresh.is_none(), quiet)
        .map_err(|e| resumable(e, run_dir))?
    {
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

/// Nested cross-validation: one line per outer fold, then the mean ± sd of the test scores.
pub(super) fn run_cv(
    sweep: &Sweep,
    sweep_text: &str,
    (outer, inner): (usize, usize),
    backend: &dyn backend::Backend,
    run_dir: &Path,
    (quiet, json): (bool, bool),
) -> Result<()> {
    let (data, data_name) = load_dataset(sweep)?;
    let sweep = &crate::sweep::with_data_image(sweep.clone(), &data);
    let storage = RunStorage::create(run_dir, OpsIn::Memory)?;
    let files = RunFiles::new(run_dir);
    files.write_text("sweep.yaml", sweep_text)?;
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
        Box::new(storage),
        &files,
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

/// An error that stopped a sweep whose directory holds what it finished: an interrupt, or
/// a write that failed (a full disk) — both say how to go on.
fn resumable(e: Error, run_dir: &Path) -> Error {
    let dir = run_dir.display();
    match e {
        Error::Interrupted(_) => Error::Interrupted(format!(
            "interrupted; finished trials are kept in {dir}/; resume with: popsweep resume {dir}"
        )),
        Error::Io { ref path, .. } if path.starts_with(run_dir) => Error::Run(format!(
            "{e}; the trials finished before are kept in {dir}/: make room, then resume with: \
             popsweep resume {dir}"
        )),
        other => other,
    }
}

/// The range test on the sweep's default model (3 seeds): `lr`'s range, a decade either
/// side of the suggestion.
pub(super) fn lr_range_from_finder(
    sweep: &Sweep,
    train: &crate::data::Dataset,
) -> Result<(f64, f64)> {
    use crate::train::lr_finder::{range_test, RangeTest};
    let specs: Vec<crate::model::MemberSpec> = (0..3u64)
        .map(|seed| {
            crate::model::knobs::member_spec(
                &crate::space::Params::new(),
                &sweep.defaults,
                train.n_features,
                train.n_classes,
                crate::rng::derive_seed(sweep.seed, 0x1F00 + seed),
            )
            .map_err(|e| Error::Run(format!("the sweep's default model: {e}")))
        })
        .collect::<Result<_>>()?;
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
pub(super) fn set_lr_range(space: &Space, low: f64, high: f64) -> Result<Space> {
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
