//! Mutation fuzzing of what users hand popsweep: sweep files, data files, study journals
//! and run directories, each damaged thousands of ways (lines dropped, doubled or swapped;
//! values replaced by hostile ones; bytes flipped; the text cut short). The promise under
//! test is the one in `src/error.rs`: whatever the input, popsweep answers with a result or
//! a one-line error, never a panic — and a study's suggestions stay inside its space
//! however its journal was damaged. The mutants come from a fixed seed, so a failure
//! reproduces.

mod common;

use popsweep::config;
use popsweep::data::{digits, DataSource};
use popsweep::space::{Params, Space};
use popsweep::storage::Op;
use popsweep::sweep::{prepare_data, SweepOutcome};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Values a user (or a damaged file) may put where a number, a name or a list belongs.
const HOSTILE: &[&str] = &[
    "0",
    "-1",
    "1",
    "0.5",
    "-0.0",
    "1e400",
    "-1e400",
    "1e-320",
    ".nan",
    ".inf",
    "-.inf",
    "9223372036854775807",
    "18446744073709551616",
    "4294967297",
    "\"\"",
    "[]",
    "{}",
    "~",
    "true",
    "[1, 2]",
    "{a: 1}",
    "\"x\"",
    "0x10",
    "1_000",
    "'",
    "[",
    "}",
];

fn pick<'a, T>(rng: &mut impl RngExt, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// One mutant of `text`: one to three random damages.
fn mutate(text: &str, rng: &mut ChaCha8Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..rng.random_range(1..=3) {
        if lines.is_empty() {
            break;
        }
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..7) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let copy = lines[i].clone();
                lines.insert(i, copy);
            }
            2 => {
                let j = rng.random_range(0..lines.len());
                lines.swap(i, j);
            }
            // A value replaced: everything after the line's first `: ` (or a list item's
            // `- `), which in these files is the scalar or flow collection of the key.
            3 | 4 => {
                let line = &lines[i];
                if let Some(at) = line.find(": ").or_else(|| line.find("- ")) {
                    lines[i] = format!("{}{}", &line[..at + 2], pick(rng, HOSTILE));
                }
            }
            // One character replaced by one that changes a number or the nesting.
            5 => {
                let chars: Vec<char> = lines[i].chars().collect();
                if !chars.is_empty() {
                    let at = rng.random_range(0..chars.len());
                    let with = *pick(rng, &['-', '0', '9', '.', 'e', ' ', ':', '{', '[', '#']);
                    lines[i] = chars[..at]
                        .iter()
                        .chain(std::iter::once(&with))
                        .chain(&chars[at + 1..])
                        .collect();
                }
            }
            // Indentation changed: the key moves to another level of the tree.
            _ => {
                if rng.random_bool(0.5) {
                    lines[i] = format!("  {}", lines[i]);
                } else {
                    lines[i] = lines[i].trim_start().to_string();
                }
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    if rng.random_bool(0.1) {
        let cut = rng.random_range(0..out.len());
        out = out.chars().take(cut).collect();
    }
    out
}

/// How many mutants per example (and damaged data files), how many of them to run, how
/// many damaged journals per sampler and damaged run directories: a deeper search than
/// CI's with, e.g., `POPSWEEP_FUZZ_MUTANTS=5000 POPSWEEP_FUZZ_RUNS=2000
/// POPSWEEP_FUZZ_JOURNALS=1000 POPSWEEP_FUZZ_RUN_DIRS=600`.
fn budget(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The shipped examples, with budgets cut so that a mutant which still parses runs in a
/// moment (a mutation may raise them again; such mutants are only parsed).
fn example_sweeps() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files = vec![("embedded".to_string(), config::DEFAULT_SWEEP.to_string())];
    for path in [
        root.join("digits-asha.yaml"),
        root.join("digits-nested-cv.yaml"),
        root.join("mnist-pbt.yaml"),
        root.join("external/sweep.yaml"),
        root.join("regression/sweep.yaml"),
        root.join("fashion-cnn.yaml"),
        root.join("mnist-cnn.yaml"),
        root.join("mnist-vit.yaml"),
        root.join("fashion-vit.yaml"),
    ] {
        let text = std::fs::read_to_string(&path).unwrap();
        files.push((path.display().to_string(), text));
    }
    for (_, text) in &mut files {
        *text = text
            .replace("run_cap: 81", "run_cap: 6")
            .replace("run_cap: 27", "run_cap: 6")
            .replace("run_cap: 16", "run_cap: 6")
            .replace("epochs: 27", "epochs: 3");
    }
    files
}

/// Every mutant of every example parses to a sweep or to one error line naming the file.
/// A mutant that still describes a small built-in sweep on digits is also run, briefly:
/// the engine meets what the validation let through.
#[test]
fn damaged_sweep_files_are_refused_in_one_line_or_run() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED);
    let data = digits::load().unwrap();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let (mutants, runs) = (
        budget("POPSWEEP_FUZZ_MUTANTS", 400),
        budget("POPSWEEP_FUZZ_RUNS", 60),
    );
    let (mut refused, mut accepted, mut ran) = (0, 0, 0);
    for (name, text) in example_sweeps() {
        for k in 0..mutants {
            let mutant = mutate(&text, &mut rng);
            let case = format!("{name} mutant {k}:\n{mutant}");
            let parsed = catch_unwind(|| config::parse_at(&mutant, "fuzz.yaml", &base))
                .unwrap_or_else(|_| panic!("parse panicked on {case}"));
            let sweep = match parsed {
                Err(e) => {
                    let message = e.to_string();
                    assert!(
                        message.starts_with("fuzz.yaml") && !message.contains('\n'),
                        "not one line naming the file: {message}\n{case}"
                    );
                    refused += 1;
                    continue;
                }
                Ok(sweep) => sweep,
            };
            accepted += 1;
            // Run only what is small: the fuzzer's hostile numbers make legal but endless
            // sweeps too (run_cap 2⁶³ is a valid, if patient, request).
            // CNN mutants are parsed only: a hostile `filters` or `fc_width` is a legal
            // model too large to train in a test.
            let small = sweep.external.is_none()
                && sweep.defaults.cnn.is_none()
                && sweep.data == DataSource::Digits
                && sweep.cv.is_none()
                && sweep.run_cap <= 12
                && sweep.epochs <= 9
                && sweep.max_params.is_none_or(|m| m <= 1 << 20);
            if !small || ran >= runs {
                continue;
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                common::run_sweep_on(&sweep, &data, "fuzz")
            }))
            .unwrap_or_else(|_| panic!("run panicked on {case}"));
            if let Err(e) = outcome {
                assert!(!e.to_string().contains('\n'), "{e}\n{case}");
            }
            ran += 1;
        }
    }
    // The mutants must exercise both paths, or the test proves little.
    assert!(
        refused > 500 && accepted > 200 && ran >= 30,
        "{refused} refused, {accepted} accepted, {ran} ran"
    );
    println!("{refused} refused, {accepted} accepted, {ran} ran");
}

/// Found by the fuzzer: `batch_size: 9223372036854775807` sized each member's workspace by
/// the request and panicked allocating it. A batch larger than the training split is the
/// whole split: the sweep's records equal those with the batch written as the split's size.
#[test]
fn a_batch_larger_than_the_data_trains_as_the_whole_data() {
    let data = digits::load().unwrap();
    let sweep_with = |batch: &str, lr_finder: bool| {
        let text = format!(
            "method: random\nmetric: {{name: val_accuracy, goal: maximize}}\nrun_cap: 3\n\
             train: {{epochs: 2, batch_size: {batch}}}\nlr_finder: {{enabled: {lr_finder}}}\n\
             parameters:\n  lr: {{distribution: log_uniform_values, min: 0.01, max: 0.3}}\n  \
             width: {{values: [16, 32]}}\n"
        );
        config::parse(&text, "inline").unwrap()
    };
    let train_rows = prepare_data(&sweep_with("32", false), &data).0.train.len();
    for lr_finder in [false, true] {
        let huge = common::run_sweep_on(
            &sweep_with("9223372036854775807", lr_finder),
            &data,
            "fuzz-batch",
        )
        .unwrap();
        let exact = common::run_sweep_on(
            &sweep_with(&train_rows.to_string(), lr_finder),
            &data,
            "fuzz-batch",
        )
        .unwrap();
        let histories = |o: &SweepOutcome| -> Vec<_> {
            o.trials
                .iter()
                .map(|t| (t.params.clone(), t.history.clone()))
                .collect()
        };
        assert_eq!(
            histories(&huge),
            histories(&exact),
            "lr_finder: {lr_finder}"
        );
        assert_eq!(huge.trials.len(), 3);
    }
}

fn popsweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popsweep"))
        .args(args)
        .output()
        .unwrap()
}

/// Asserts popsweep ended without a panic, with exit 0, 1 or 2 and every stderr line a
/// warning or the one error line.
fn assert_clean(case: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "{case}: exit {:?}: {stderr}",
        out.status.code()
    );
    assert!(
        stderr
            .lines()
            .all(|l| l.starts_with("warning: ") || l.starts_with("error: ")),
        "{case}: {stderr}"
    );
    assert!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count() <= 1,
        "{case}: {stderr}"
    );
}

const SPACE: &str = r#"{"lr": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.1},
  "width": {"values": [16, 32, 64]},
  "depth": {"distribution": "int_uniform", "min": 1, "max": 3},
  "kind": {"values": ["a", "b"]},
  "scale": {"distribution": "uniform", "min": -1.0, "max": 1.0, "condition": {"kind": ["b"]}}}"#;

/// A study of 14 told trials (one pruned, one failed) with `sampler`, its journal's text.
fn journal_of(dir: &Path, sampler: &str) -> String {
    let study = dir.to_str().unwrap();
    let out = popsweep(&[
        "ask",
        "--study",
        study,
        "--space",
        SPACE,
        "--sampler",
        sampler,
        "--seed",
        "1",
        "--n",
        "14",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let n = v["trial"].as_u64().unwrap().to_string();
        let lr = v["params"]["lr"].as_f64().unwrap();
        let tell: Vec<&str> = match n.as_str() {
            "3" => vec!["--state", "pruned"],
            "5" => vec!["--state", "failed"],
            _ => vec!["--value"],
        };
        let value = format!("{:e}", (lr.ln() + 4.6).powi(2) - 0.5);
        let mut args = vec!["tell", "--study", study, "--trial", &n];
        args.extend(tell);
        if args.last() == Some(&"--value") {
            args.push(&value);
        }
        let out = popsweep(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::read_to_string(dir.join("journal.jsonl")).unwrap()
}

/// Lines another program (or a bad day) may leave in a journal: a parameter of the wrong
/// type, values outside the space, an absurd value, a second header, bytes that are not text.
const FOREIGN_LINES: &[&[u8]] = &[
    b"{\"op\":\"ask\",\"trial\":14,\"params\":{\"lr\":\"fast\"}}\n",
    b"{\"op\":\"ask\",\"trial\":14,\"params\":{\"lr\":-5,\"width\":7,\"depth\":99,\"kind\":\"z\"}}\n",
    b"{\"op\":\"tell\",\"trial\":0,\"state\":\"complete\",\"value\":1e308}\n",
    b"{\"op\":\"study\",\"direction\":\"sideways\",\"sampler\":\"tpe\",\"seed\":0,\"space\":\"\"}\n",
    b"\xff\xfe\x00garbage\n",
];

/// Damages a journal's bytes: a line's characters changed, lines dropped, doubled or
/// swapped, the file cut short, or a foreign line appended.
fn damage(journal: &str, rng: &mut ChaCha8Rng) -> String {
    if rng.random_bool(0.5) {
        return mutate(journal, rng);
    }
    let mut bytes = journal.as_bytes().to_vec();
    match rng.random_range(0..3) {
        0 => {
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = *pick(rng, b"0123456789-.e\"{}[]:, x");
            }
        }
        1 => bytes.truncate(rng.random_range(0..bytes.len())),
        _ => bytes.extend_from_slice(FOREIGN_LINES[rng.random_range(0..FOREIGN_LINES.len())]),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The space of the journal's first valid study header, as `popsweep ask` reads it.
fn header_space(journal: &str) -> Option<Space> {
    let header = journal
        .lines()
        .find_map(|l| match serde_json::from_str(l.trim()) {
            Ok(Op::Study(h)) => Some(h),
            _ => None,
        })?;
    config::parse_space(&header.space, "space").ok()
}

/// `ask`, `tell` and `best` on a damaged journal: a warning per skipped line and a result,
/// or one error line — and what `ask` suggests is inside the space.
#[test]
fn damaged_journals_are_reported_and_suggestions_stay_in_the_space() {
    let root = std::env::temp_dir().join(format!("popsweep-fuzz-journal-{}", std::process::id()));
    let mut rng = ChaCha8Rng::seed_from_u64(0x10C);
    let mut asked = 0;
    for sampler in [
        "random",
        "sobol",
        "tpe",
        "tpe-univariate",
        "tpe-watanabe",
        "gp",
    ] {
        let clean_dir = root.join(format!("{sampler}-clean"));
        let _ = std::fs::remove_dir_all(&clean_dir);
        std::fs::create_dir_all(&clean_dir).unwrap();
        let clean = journal_of(&clean_dir, sampler);
        let cases = budget("POPSWEEP_FUZZ_JOURNALS", 30) / if sampler == "gp" { 2 } else { 1 };
        for k in 0..cases {
            let damaged = damage(&clean, &mut rng);
            let dir: PathBuf = root.join(format!("{sampler}-{k}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("journal.jsonl"), &damaged).unwrap();
            let case = format!("{sampler} damage {k}:\n{damaged}");
            let study = dir.to_str().unwrap();
            let space = header_space(&damaged);
            let out = popsweep(&["ask", "--study", study, "--n", "2"]);
            assert_clean(&case, &out);
            if out.status.success() {
                for line in String::from_utf8(out.stdout).unwrap().lines() {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    let params: Params = serde_json::from_value(v["params"].clone()).unwrap();
                    // Held to the space the study has after the damage: its first header.
                    if let Some(space) = &space {
                        space
                            .check(&params)
                            .unwrap_or_else(|e| panic!("{e}: {line}\n{case}"));
                    }
                    asked += 1;
                }
            }
            assert_clean(
                &case,
                &popsweep(&["tell", "--study", study, "--trial", "1", "--value", "0.5"]),
            );
            assert_clean(&case, &popsweep(&["best", "--study", study]));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        asked > 100,
        "only {asked} suggestions: the damage left too little to ask from"
    );
}

/// An IDX image file (3 images of 4×4) and its label file.
fn idx_pair() -> (Vec<u8>, Vec<u8>) {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4];
    images.extend((0..48).map(|i| (i * 5) as u8));
    let labels = vec![0, 0, 8, 1, 0, 0, 0, 3, 0, 2, 1];
    (images, labels)
}

/// Changes one to four bytes, preferring the header (the first `header` bytes), where a
/// count or a shape lives; or cuts the file short.
fn damage_bytes(bytes: &[u8], header: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if rng.random_bool(0.2) {
        out.truncate(rng.random_range(0..out.len()));
        return out;
    }
    for _ in 0..rng.random_range(1..=4) {
        let at = if rng.random_bool(0.7) {
            rng.random_range(0..header.min(out.len()))
        } else {
            rng.random_range(0..out.len())
        };
        out[at] = *pick(
            rng,
            &[0x00, 0x01, 0x7f, 0x80, 0xff, b'9', b'(', b')', b',', b'\''],
        );
    }
    out
}

/// Data files damaged in their counts, shapes, types and values: each loads, or fails with
/// an error that names the file — never a panic, never an allocation sized by a lie.
#[test]
fn damaged_data_files_are_refused_with_their_name_or_loaded() {
    use popsweep::data::csv::{self, LabelColumn};
    use popsweep::data::{idx, npy, Task};
    let dir = std::env::temp_dir().join(format!("popsweep-fuzz-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0xDA7A);
    let rounds = budget("POPSWEEP_FUZZ_MUTANTS", 400);
    let names_file = |e: &popsweep::error::Error, file: &str, case: &str| {
        let message = e.to_string();
        assert!(
            message.contains(file) && !message.contains('\n'),
            "{message}\n{case}"
        );
    };

    let friedman = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/regression/friedman1.csv"),
    )
    .unwrap();
    let small_csv: String = friedman
        .lines()
        .take(30)
        .map(|l| format!("{l}\n"))
        .collect();
    let labels = [
        LabelColumn::Last,
        LabelColumn::Index(99),
        LabelColumn::Name("y".into()),
    ];
    for k in 0..rounds {
        let mut text = mutate(&small_csv, &mut rng);
        // A field replaced by a hostile value, as a spreadsheet export may leave one.
        if rng.random_bool(0.5) {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            if let Some(line) = lines.get_mut(rng.random_range(0..small_csv.lines().count())) {
                let mut fields: Vec<&str> = line.split(',').collect();
                let at = rng.random_range(0..fields.len());
                fields[at] = *pick(
                    &mut rng,
                    &[
                        "",
                        "nan",
                        "inf",
                        "-1e400",
                        "1e39",
                        "x",
                        "\"1\"",
                        "9223372036854775808",
                    ],
                );
                *line = fields.join(",");
            }
            text = lines.join("\n");
        }
        for task in [Task::Classification, Task::Regression] {
            let label = pick(&mut rng, &labels);
            let case = format!("csv mutant {k} ({task:?}, {label:?}):\n{text}");
            let parsed = catch_unwind(|| csv::parse(&text, "fuzz.csv", label, task))
                .unwrap_or_else(|_| panic!("csv panicked on {case}"));
            if let Err(e) = parsed {
                names_file(&e, "fuzz.csv", &case);
            }
        }
    }

    let (images, image_labels) = idx_pair();
    let features: Vec<u8> = (0..12)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let targets: Vec<u8> = [0i64, 1, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let npy_features = common::npy("<f4", "(3, 4)", &features);
    let npy_labels = common::npy("<i8", "(3,)", &targets);
    let (images_path, labels_path) = (dir.join("images.idx"), dir.join("labels.idx"));
    let (features_path, targets_path) = (dir.join("x.npy"), dir.join("y.npy"));
    // Headers whose counts multiply past 2⁶⁴ (found by reading the loaders after the
    // fuzzer): refused with the file's name, not wrapped into a small count or a panic.
    let mut huge_images = images.clone();
    huge_images[4..16].fill(0xff);
    std::fs::write(&images_path, &huge_images).unwrap();
    std::fs::write(&labels_path, &image_labels).unwrap();
    let e = idx::load_pair(&images_path, &labels_path).unwrap_err();
    assert!(
        e.to_string().contains("images.idx") && e.to_string().contains("more bytes than any file"),
        "{e}"
    );
    for shape in ["(4294967296, 4294967296)", "(0, 4294967296, 4294967296)"] {
        std::fs::write(&features_path, common::npy("<f4", shape, &features)).unwrap();
        std::fs::write(&targets_path, &npy_labels).unwrap();
        let e = npy::load_pair(&features_path, &targets_path, Task::Classification).unwrap_err();
        assert!(
            e.to_string().contains("x.npy") && e.to_string().contains("more elements"),
            "{shape}: {e}"
        );
    }
    for k in 0..rounds {
        let (which, mut files) = match k % 4 {
            0 => ("images.idx", [images.clone(), image_labels.clone()]),
            1 => ("labels.idx", [images.clone(), image_labels.clone()]),
            2 => ("x.npy", [npy_features.clone(), npy_labels.clone()]),
            _ => ("y.npy", [npy_features.clone(), npy_labels.clone()]),
        };
        let (victim, header) = match k % 4 {
            0 => (0, 16),
            1 => (1, 8),
            n => (n - 2, 74),
        };
        files[victim] = damage_bytes(&files[victim], header, &mut rng);
        let case = format!(
            "{which} damage {k}: {:?}",
            String::from_utf8_lossy(&files[victim])
        );
        let loaded = if k % 4 < 2 {
            std::fs::write(&images_path, &files[0]).unwrap();
            std::fs::write(&labels_path, &files[1]).unwrap();
            catch_unwind(|| idx::load_pair(&images_path, &labels_path).map(|_| ()))
        } else {
            std::fs::write(&features_path, &files[0]).unwrap();
            std::fs::write(&targets_path, &files[1]).unwrap();
            let task = if k % 8 < 4 {
                Task::Classification
            } else {
                Task::Regression
            };
            catch_unwind(|| npy::load_pair(&features_path, &targets_path, task).map(|_| ()))
        }
        .unwrap_or_else(|_| panic!("panicked on {case}"));
        if let Err(e) = loaded {
            names_file(&e, which, &case);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run directory after a bad day: its `trials.jsonl` damaged (values changed, lines
/// doubled, dropped or cut short) or its `summary.json` garbled. `report` and `resume` on
/// it end in warnings and a result, or one error line — never a panic.
#[test]
fn damaged_run_directories_are_reported_and_resumed_or_refused() {
    let root = std::env::temp_dir().join(format!("popsweep-fuzz-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let sweep = root.join("sweep.yaml");
    std::fs::write(
        &sweep,
        "method: random\nmetric: {name: val_accuracy, goal: maximize}\nrun_cap: 8\n\
         train: {epochs: 3, batch_size: 64}\nscheduler: {type: asha, min_budget: 1, eta: 3, population: 3}\n\
         parameters:\n  lr: {distribution: log_uniform_values, min: 0.01, max: 0.3}\n  \
         width: {values: [8, 16]}\n",
    )
    .unwrap();
    let clean = root.join("clean");
    let out = popsweep(&[
        "run",
        sweep.to_str().unwrap(),
        "--out",
        clean.to_str().unwrap(),
        "--quiet",
        "--no-sanity",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trials = std::fs::read_to_string(clean.join("trials.jsonl")).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0x4E5);
    for k in 0..budget("POPSWEEP_FUZZ_RUN_DIRS", 24) {
        let dir = root.join(format!("damaged-{k}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&clean).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
            }
        }
        let damaged = damage(&trials, &mut rng);
        std::fs::write(dir.join("trials.jsonl"), &damaged).unwrap();
        if rng.random_bool(0.3) {
            let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
            std::fs::write(dir.join("summary.json"), damage(&summary, &mut rng)).unwrap();
        }
        let case = format!("damage {k}:\n{damaged}");
        let run_dir = dir.to_str().unwrap();
        assert_clean(
            &format!("report, {case}"),
            &popsweep(&["report", run_dir, "--json"]),
        );
        assert_clean(
            &format!("resume, {case}"),
            &popsweep(&["resume", run_dir, "--quiet"]),
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
