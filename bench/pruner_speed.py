"""Optuna's side of `cargo bench --bench pruner_speed`, and the comparison: the cost of
`trial.should_prune()` in a study of 1,000 complete trials of 100 steps (with
successive-halving rung values at steps 1, 4, 16 and 64), as a training loop calls it: a
new trial reports steps 0..100 and asks after each. Runs popsweep's bench and Optuna's
alternately (ROUNDS times each) and prints the median time per call and the ratio.

    venv/bin/python bench/pruner_speed.py [--rounds 3] [--trials 5]
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import time
import warnings

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore")

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PRUNERS = {
    "median": lambda: optuna.pruners.MedianPruner(),
    "percentile": lambda: optuna.pruners.PercentilePruner(25.0),
    "successive_halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
    "hyperband": lambda: optuna.pruners.HyperbandPruner(),
    "threshold": lambda: optuna.pruners.ThresholdPruner(upper=10.0),
    "patient": lambda: optuna.pruners.PatientPruner(None, patience=5),
    "wilcoxon": lambda: optuna.pruners.WilcoxonPruner(),
}


def value(trial, step):
    floor = (trial * 7919 % 1000) / 1000
    return floor + math.exp(-step / 30) + 0.01 * math.sin(trial * step)


def study(pruner, n):
    s = optuna.create_study(pruner=pruner, study_name="speed")
    for t in range(n):
        s.add_trial(optuna.trial.create_trial(
            value=value(t, 99),
            intermediate_values={step: value(t, step) for step in range(100)},
            system_attrs={f"completed_rung_{k}": value(t, step)
                          for k, step in enumerate([1, 4, 16, 64])},
        ))
    return s


def optuna_side(trials):
    out = {}
    for name, make in PRUNERS.items():
        s = study(make(), 1000)
        elapsed, calls = 0.0, 0
        for _ in range(trials):
            trial = s.ask()
            for step in range(100):
                trial.report(value(trial.number, step), step)
                start = time.perf_counter()
                trial.should_prune()
                elapsed += time.perf_counter() - start
                calls += 1
            s.tell(trial, value(trial.number, 99))
        out[name] = elapsed / calls * 1e6
    return out


def popsweep_side():
    run = subprocess.run(["cargo", "bench", "-q", "--bench", "pruner_speed"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    lines = [json.loads(l) for l in run.stdout.splitlines() if l.startswith("{")]
    return {l["pruner"]: l["us_per_call"] for l in lines}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    subprocess.run(["cargo", "bench", "--no-run", "-q", "--bench", "pruner_speed"], cwd=ROOT,
                   check=True, capture_output=True)
    ours, theirs = {n: [] for n in PRUNERS}, {n: [] for n in PRUNERS}
    for _ in range(args.rounds):
        for n, us in popsweep_side().items():
            ours[n].append(us)
        for n, us in optuna_side(args.trials).items():
            theirs[n].append(us)
    print(f"| pruner | popsweep µs/call | Optuna {optuna.__version__} µs/call | Optuna / popsweep |")
    print("|---|---:|---:|---:|")
    for n in PRUNERS:
        a, b = statistics.median(ours[n]), statistics.median(theirs[n])
        print(f"| {n} | {a:.2f} | {b:.1f} | {b / a:.0f}× |")


if __name__ == "__main__":
    main()
