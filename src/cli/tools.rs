//! The commands around a sweep: `report`, `lr-find`, `sanity` and `bench`.

use super::print::describe_sanity;
use super::run::load_sweep;
use crate::backend::{self, BackendChoice};
use crate::error::{Error, Result};
use crate::model::hparams::OptimizerKind;
use crate::report::run_files::default_run_dir;
use crate::storage::TrialState;
use crate::sweep::load_data;
use crate::train::sanity::sanity_check;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(super) struct LrFindArgs {
    /// Sweep file whose data, model and train defaults to use. Default: the embedded digits sweep.
    pub(super) sweep: Option<PathBuf>,
    #[arg(long, default_value_t = 1e-5)]
    pub(super) min_lr: f64,
    #[arg(long, default_value_t = 10.0)]
    pub(super) max_lr: f64,
    /// Minibatches over which the learning rate grows from min to max.
    #[arg(long, default_value_t = 300)]
    pub(super) steps: usize,
    /// Range tests run together, one per seed.
    #[arg(long, default_value_t = 3)]
    pub(super) seeds: usize,
    /// Minibatch size. Default: the sweep's.
    #[arg(long)]
    pub(super) batch_size: Option<usize>,
    /// Output directory for the curve (CSV, SVG) and the result (JSON). Default: runs/lr-find-<name>-<UTC>/.
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
    #[arg(long)]
    pub(super) threads: Option<usize>,
    /// One JSON object (with `suggested_lr`) on stdout instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

/// `popsweep bench`'s arguments (the interface of ../shared/bench/peer_bench.py).
#[derive(clap::Args)]
pub(super) struct BenchArgs {
    /// Layer widths, input first, classes last.
    #[arg(long, default_value = "784,256,256,10")]
    pub(super) dims: String,
    #[arg(long, default_value_t = 128)]
    pub(super) batch: usize,
    /// Population size P.
    #[arg(long, default_value_t = 64)]
    pub(super) pop: usize,
    /// sgd (momentum 0.9, weight decay 1e-4) or adamw (betas 0.9/0.999, weight decay 1e-2).
    #[arg(long, default_value = "sgd")]
    pub(super) optimizer: String,
    /// Timed steps per repetition.
    #[arg(long, default_value_t = 50)]
    pub(super) steps: usize,
    #[arg(long, default_value_t = 5)]
    pub(super) warmup: usize,
    #[arg(long, default_value_t = 3)]
    pub(super) reps: usize,
    /// Worker threads. Default: one per core.
    #[arg(long)]
    pub(super) threads: Option<usize>,
    /// Ragged population: hidden widths drawn from this list (with --depths).
    #[arg(long)]
    pub(super) widths_from: Option<String>,
    /// Ragged population: depth range, e.g. 1-3.
    #[arg(long, default_value = "1-3")]
    pub(super) depths: String,
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    pub(super) json: bool,
    /// Where to run: auto (the GPU if one is usable), cpu or cuda.
    #[arg(long, value_enum, default_value = "auto")]
    pub(super) backend: BackendChoice,
    /// mlp (--dims), cnn (--input, --conv, --kernel, --pool, --fc, --classes: the
    /// interface of ../shared/bench/peer_cnn.py) or vit (--input, --patch, --d-model,
    /// --heads, --layers, --mlp-ratio, --classes).
    #[arg(long, default_value = "mlp")]
    pub(super) model: String,
    /// CNN input image: channels,height,width.
    #[arg(long, default_value = "1,28,28")]
    pub(super) input: String,
    /// CNN filters per convolution.
    #[arg(long, default_value = "32,64")]
    pub(super) conv: String,
    #[arg(long, default_value_t = 3)]
    pub(super) kernel: usize,
    /// Max-pool window after each convolution (1: none).
    #[arg(long, default_value_t = 2)]
    pub(super) pool: usize,
    /// CNN dense layers' widths before the classifier (empty: none).
    #[arg(long, default_value = "128")]
    pub(super) fc: String,
    #[arg(long, default_value_t = 10)]
    pub(super) classes: usize,
    /// ViT patch size.
    #[arg(long, default_value_t = 7)]
    pub(super) patch: usize,
    /// ViT width.
    #[arg(long, default_value_t = 64)]
    pub(super) d_model: usize,
    /// ViT attention heads.
    #[arg(long, default_value_t = 4)]
    pub(super) heads: usize,
    /// ViT blocks.
    #[arg(long, default_value_t = 2)]
    pub(super) layers: usize,
    /// ViT MLP width as a multiple of d_model.
    #[arg(long, default_value_t = 2)]
    pub(super) mlp_ratio: usize,
}

pub(super) fn bench_command(a: BenchArgs) -> Result<()> {
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
    use crate::bench::ImageModel;
    let image_model = match a.model.as_str() {
        "mlp" => None,
        "cnn" => Some(ImageModel::Cnn(cnn_bench(&a, &list)?)),
        "vit" => Some(ImageModel::Vit {
            input: input_image(&a, &list)?,
            spec: crate::model::vit::VitSpec {
                patch: a.patch,
                d_model: a.d_model,
                heads: a.heads,
                layers: a.layers,
                mlp_ratio: a.mlp_ratio,
                pool: crate::model::vit::VitPool::Mean,
            },
        }),
        other => {
            return Err(arg_error(
                "--model",
                format!("`{other}`: expected mlp, cnn or vit"),
            ))
        }
    };
    let dims = match &image_model {
        Some(m) => vec![m.input().features(), a.classes],
        None => list("--dims", &a.dims)?,
    };
    if let Some(m) = &image_model {
        m.arch(a.classes).map_err(|e| arg_error("--model", e))?;
    }
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
        image_model,
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

/// `--input`: an image shape.
fn input_image(
    a: &BenchArgs,
    list: &impl Fn(&str, &str) -> Result<Vec<usize>>,
) -> Result<crate::model::cnn::ImageShape> {
    match list("--input", &a.input)?[..] {
        [channels, height, width] => Ok(crate::model::cnn::ImageShape {
            channels,
            height,
            width,
        }),
        _ => Err(Error::Config {
            file: "command line".into(),
            line: None,
            field: "--input".into(),
            message: format!("`{}` is not channels,height,width", a.input),
        }),
    }
}

/// `--model cnn`'s workload from its flags.
fn cnn_bench(
    a: &BenchArgs,
    list: &impl Fn(&str, &str) -> Result<Vec<usize>>,
) -> Result<crate::bench::CnnBench> {
    let input = input_image(a, list)?;
    let fc = match a.fc.trim() {
        "" => Vec::new(),
        text => list("--fc", text)?,
    };
    if a.kernel == 0 || a.pool == 0 || a.classes == 0 {
        return Err(Error::Config {
            file: "command line".into(),
            line: None,
            field: "--kernel/--pool/--classes".into(),
            message: "must be at least 1".into(),
        });
    }
    Ok(crate::bench::CnnBench {
        input,
        conv: list("--conv", &a.conv)?,
        kernel: a.kernel,
        pool: a.pool,
        fc,
    })
}

/// The CPU bench, or the GPU bench when `choice` selects the GPU.
pub(super) fn run_bench(
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

pub(super) fn report(run: crate::report::run::RunData, json: bool) -> Result<()> {
    use crate::report::{html, page_data::Findings};
    let dir = run.dir.as_path();
    let metric = &run.sweep.metric;
    let findings = Findings::of(&run);
    let (imp, flags) = (&findings.importance, &findings.flags);
    let page = dir.join("report.html");
    // A read-only run directory still gets its summary; only the page is skipped.
    let written = match std::fs::write(&page, html::render(&run, &findings)) {
        Ok(()) => Some(page.display().to_string()),
        Err(e) if crate::storage::journal::is_read_only(&e) => {
            eprintln!(
                "warning: {}: not written ({e}); the summary follows",
                page.display()
            );
            None
        }
        Err(e) => return Err(Error::io(&page, e)),
    };
    if json {
        let out = serde_json::json!({
            "report": written,
            "summary": run.summary,
            "importance": imp,
            "overfitting": flags,
        });
        println!("{out}");
        return Ok(());
    }
    let states = |s: TrialState| run.trials.iter().filter(|t| t.state == s).count();
    let diverged = run.trials.iter().filter(|t| t.diverged()).count();
    println!(
        "run {}: sweep `{}`, {} trials ({} complete, {} pruned, {} diverged, {} failed), metric {}",
        dir.display(),
        run.sweep.name,
        run.trials.len(),
        states(TrialState::Complete),
        states(TrialState::Pruned),
        diverged,
        states(TrialState::Failed) - diverged,
        metric.name
    );
    print_best(&run);
    println!("importance (PED-ANOVA, Spearman; + means higher does better):");
    for m in imp {
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
    if let Some(page) = written {
        println!("report: {page}");
    }
    Ok(())
}

/// `report`'s line on the best trial and its test, by the kind of run.
fn print_best(run: &crate::report::run::RunData) {
    match &run.summary {
        Some(s) if s.get("folds").is_some() => println!(
            "nested cross-validation over {} outer folds ({} inner): test accuracy {:.4} ± {:.4} \
             (mean ± sd; each fold's best configuration retrained and tested once on the fold)",
            s["outer"],
            s["inner"],
            s["test_accuracy_mean"].as_f64().unwrap_or(f64::NAN),
            s["test_accuracy_sd"].as_f64().unwrap_or(f64::NAN)
        ),
        Some(s) if s["best"]["trial"].is_null() => {
            println!("the run ended without a complete trial: no best trial, no test score")
        }
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
        None if run.is_study() => match run.ranked().first() {
            Some(t) => println!(
                "an ask/tell study: best trial {}, value {:.6}",
                t.number,
                t.last_value().unwrap_or(f64::NAN)
            ),
            None => println!("an ask/tell study with no complete trial yet"),
        },
        None => println!("no summary.json: the run did not finish, so there is no test score"),
    }
}

pub(super) fn lr_find(a: LrFindArgs) -> Result<()> {
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
    let sweep = crate::sweep::with_data_image(sweep, &tuning.train);
    let test = RangeTest {
        min_lr: a.min_lr,
        max_lr: a.max_lr,
        steps: a.steps,
        batch_size: a.batch_size.unwrap_or(sweep.batch_size).max(1),
        ..RangeTest::default()
    };
    let specs: Vec<crate::model::MemberSpec> = (0..a.seeds as u64)
        .map(|seed| {
            crate::model::knobs::member_spec(
                &crate::space::Params::new(),
                &sweep.defaults,
                tuning.train.n_features,
                tuning.train.n_classes,
                crate::rng::derive_seed(sweep.seed, 0x1F00 + seed),
            )
            .map_err(|e| Error::Run(format!("the sweep's default model: {e}")))
        })
        .collect::<Result<_>>()?;
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let result = range_test(&test, &specs, &tuning.train, threads);
    let dir = a
        .out
        .unwrap_or_else(|| default_run_dir(&format!("lr-find-{}", sweep.name)));
    let json = write_range_test(&dir, &result, &format!("{} ({data_name})", sweep.name))?;
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

/// The range test's files in `dir`: every member's curve as CSV, the chart as SVG (which
/// `popsweep report` embeds), and the result as JSON, which it returns.
fn write_range_test(
    dir: &std::path::Path,
    result: &crate::train::lr_finder::RangeResult,
    title: &str,
) -> Result<String> {
    use crate::report::plot::{Chart, Series};
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
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
        title: &format!("learning-rate range test: {title}"),
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
    Ok(json)
}

pub(super) fn sanity(
    sweep_path: Option<PathBuf>,
    steps: usize,
    json: bool,
    choice: BackendChoice,
) -> Result<()> {
    let (sweep, _) = load_sweep(&sweep_path)?;
    let (tuning, _sealed, _) = load_data(&sweep)?;
    let sweep = crate::sweep::with_data_image(sweep, &tuning.train);
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
