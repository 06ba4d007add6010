//! A damaged byte range in a journal or in `trials.jsonl` loses only the records it
//! touched: a property test over random damage (position, length, bytes), with the
//! undamaged records worked out from the byte spans of the lines as written.

use popsweep::space::{ParamValue, Params};
use popsweep::storage::{Journal, Op, RunStorage, Storage, TrialRecord, TrialState};
use std::path::{Path, PathBuf};

/// A small deterministic generator (SplitMix64), so a failure names its case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Cases per test; `POPSWEEP_FUZZ_DAMAGE=20000` for a deeper run.
fn cases() -> u64 {
    std::env::var("POPSWEEP_FUZZ_DAMAGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popsweep-damage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Overwrites a random range of `path` (1–60 bytes, random values) and returns the byte
/// spans `[start, end)` of the lines that survive whole: neither their bytes nor the
/// newlines that delimit them were touched.
fn damage(path: &Path, rng: &mut Rng) -> Vec<(usize, usize)> {
    let mut bytes = std::fs::read(path).unwrap();
    let at = rng.below(bytes.len());
    let len = (1 + rng.below(60)).min(bytes.len() - at);
    let mut spans = Vec::new();
    let mut start: usize = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            // The line with its own newline and the newline before it.
            let (lo, hi) = (start.saturating_sub(1), i + 1);
            if hi <= at || lo >= at + len {
                spans.push((start, i));
            }
            start = i + 1;
        }
    }
    for b in &mut bytes[at..at + len] {
        *b = rng.next() as u8;
    }
    std::fs::write(path, &bytes).unwrap();
    spans
}

/// The ops of the lines in `spans`, read from the undamaged copy `original`.
fn ops_in(original: &[u8], spans: &[(usize, usize)]) -> Vec<Op> {
    spans
        .iter()
        .map(|&(a, b)| {
            let line = std::str::from_utf8(&original[a..b]).unwrap();
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut object = v.as_object().unwrap().clone();
            object.remove("crc");
            serde_json::from_value(serde_json::Value::Object(object)).unwrap()
        })
        .collect()
}

fn params(x: f64) -> Params {
    Params::from([("x".to_string(), ParamValue::Float(x))])
}

#[test]
fn journal_damage_loses_only_the_lines_it_touched() {
    for case in 0..cases() {
        let mut rng = Rng(case);
        let dir = temp("journal");
        let path = dir.join("journal.jsonl");
        {
            let mut journal = Journal::open(&path).unwrap();
            let trials = 4 + rng.below(12);
            for t in 0..trials {
                let ask = Op::Ask {
                    trial: t,
                    params: params(t as f64 / 8.0),
                    enqueued: false,
                };
                journal
                    .transact_ops(&mut |_| Ok(vec![ask.clone()]))
                    .unwrap()
                    .unwrap();
            }
            for t in 0..trials {
                let mut ops: Vec<Op> = (0..rng.below(3) as u64)
                    .map(|step| Op::Report {
                        trial: t,
                        step,
                        value: (t as u64 + step) as f64,
                    })
                    .collect();
                if rng.below(4) > 0 {
                    ops.push(Op::Tell {
                        trial: t,
                        state: TrialState::Complete,
                        value: Some(t as f64 * 0.5),
                        values: Vec::new(),
                        constraints: Vec::new(),
                    });
                }
                for op in ops {
                    journal
                        .transact_ops(&mut |_| Ok(vec![op.clone()]))
                        .unwrap()
                        .unwrap();
                }
            }
        }
        let original = std::fs::read(&path).unwrap();
        let spans = damage(&path, &mut rng);
        let intact = ops_in(&original, &spans);
        let mut journal = Journal::open(&path).unwrap();
        let state = journal.refresh().unwrap().clone();
        let asked: Vec<usize> = intact
            .iter()
            .filter_map(|op| match op {
                Op::Ask { trial, .. } => Some(*trial),
                _ => None,
            })
            .collect();
        for op in &intact {
            match op {
                Op::Ask { trial, params, .. } => {
                    assert_eq!(
                        &state.trials[*trial].params, params,
                        "case {case}: ask {trial}"
                    )
                }
                Op::Report { trial, step, value } if asked.contains(trial) => assert!(
                    state.trials[*trial].intermediate.contains(&(*step, *value)),
                    "case {case}: report {trial}/{step}"
                ),
                Op::Tell { trial, value, .. } if asked.contains(trial) => {
                    let t = &state.trials[*trial];
                    assert_eq!(
                        (t.state, t.value),
                        (TrialState::Complete, *value),
                        "case {case}"
                    );
                }
                _ => {}
            }
        }
        // The next ask continues after every recorded number: none is issued twice.
        if let Some(&highest) = asked.iter().max() {
            assert!(state.trials.len() > highest, "case {case}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

fn record(number: usize, value: f64) -> TrialRecord {
    TrialRecord {
        number,
        state: TrialState::Complete,
        value: Some(value),
        ..TrialRecord::default()
    }
}

#[test]
fn trials_damage_loses_only_the_records_it_touched_and_resume_repairs_the_file() {
    for case in 0..cases() {
        let mut rng = Rng(1_000_000 + case);
        let dir = temp("trials");
        {
            let mut run = RunStorage::create(&dir, popsweep::storage::OpsIn::Memory).unwrap();
            for t in 0..3 + rng.below(20) {
                run.record(&record(t, t as f64 / 4.0)).unwrap();
            }
            run.sync().unwrap();
        }
        let path = dir.join("trials.jsonl");
        let original = std::fs::read(&path).unwrap();
        let spans = damage(&path, &mut rng);
        let intact: Vec<(usize, f64)> = spans
            .iter()
            .map(|&(a, b)| {
                let v: serde_json::Value = serde_json::from_slice(&original[a..b]).unwrap();
                (
                    v["number"].as_u64().unwrap() as usize,
                    v["value"].as_f64().unwrap_or_else(|| panic!("{v}")),
                )
            })
            .collect();
        let read = |storage: &mut RunStorage| -> Vec<(usize, f64)> {
            let records = storage.records().unwrap();
            records
                .iter()
                .map(|r| (r.number, r.value.unwrap()))
                .collect()
        };
        // Every intact record is found, and nothing is found that was not written (a
        // line whose damage left it readable, a newline turned into a space, counts too).
        let written: Vec<(usize, f64)> = (0..original.iter().filter(|&&b| b == b'\n').count())
            .map(|t| (t, t as f64 / 4.0))
            .collect();
        let check = |found: &[(usize, f64)], when: &str| {
            assert!(
                intact.iter().all(|r| found.contains(r)),
                "case {case}: {when} lost a record"
            );
            assert!(
                found.iter().all(|r| written.contains(r)),
                "case {case}: {when} invented one"
            );
        };
        check(&read(&mut RunStorage::read(&dir).unwrap()), "reading");
        let mut resumed = RunStorage::resume(&dir, popsweep::storage::OpsIn::Memory).unwrap();
        check(&read(&mut resumed), "the repair");
        resumed.record(&record(99, 1.0)).unwrap();
        let text = std::fs::read(&path).unwrap();
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde_json::Value>(line).unwrap_or_else(|e| {
                panic!(
                    "case {case}: not JSON lines after resume: {e}: {}",
                    String::from_utf8_lossy(line)
                )
            });
        }
        drop(resumed);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
