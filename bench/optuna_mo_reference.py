"""Runs Optuna's NSGAIISampler and TPESampler (multi-objective TPE) on
bench/mo_functions.py and stores each run's final hypervolume in
bench/reference/optuna_mo.jsonl (one JSON line per run, appended; runs present are
skipped). benches/multi_objective.rs compares popsweep's samplers with these.

    venv/bin/python bench/optuna_mo_reference.py --seeds 20 --trials 100
"""
import argparse
import json
import os

import numpy as np
import optuna
from optuna._hypervolume import compute_hypervolume

from mo_functions import FUNCTIONS

optuna.logging.set_verbosity(optuna.logging.WARNING)
OUT = os.path.join(os.path.dirname(__file__), "reference", "optuna_mo.jsonl")


def run(name, sampler_name, seed, trials):
    f, dims, ref = FUNCTIONS[name]
    sampler = {
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
    }[sampler_name]()
    study = optuna.create_study(directions=["minimize"] * len(ref), sampler=sampler)
    study.optimize(lambda t: f([t.suggest_float(f"x{i}", 0, 1) for i in range(dims)]),
                   n_trials=trials)
    points = np.array([t.values for t in study.best_trials])
    inside = points[(points < np.array(ref)).all(axis=1)]
    return float(compute_hypervolume(inside, np.array(ref))) if len(inside) else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=100)
    args = ap.parse_args()
    done = set()
    if os.path.exists(OUT):
        for line in open(OUT):
            r = json.loads(line)
            done.add((r["function"], r["sampler"], r["seed"], r["trials"]))
    with open(OUT, "a") as out:
        for name in FUNCTIONS:
            for sampler in ["nsga2", "tpe"]:
                for seed in range(args.seeds):
                    if (name, sampler, seed, args.trials) in done:
                        continue
                    hv = run(name, sampler, seed, args.trials)
                    out.write(json.dumps({"function": name, "sampler": sampler, "seed": seed,
                                          "trials": args.trials, "hypervolume": hv}) + "\n")
                    out.flush()


if __name__ == "__main__":
    main()
