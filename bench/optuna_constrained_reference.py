"""Optuna's TPESampler with constraints on Gardner et al.'s (2014) constrained problem:
minimise cos(2·x1)·cos(x2) + sin(x1) subject to cos(x1)·cos(x2) − sin(x1)·sin(x2) ≤ 0.5
over [0, 6]². Stores the best feasible value of each run in
bench/reference/optuna_constrained.jsonl; benches/constrained.rs compares popsweep's.

    venv/bin/python bench/optuna_constrained_reference.py --seeds 20 --trials 100
"""
import argparse
import json
import math
import os
import warnings

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(__file__), "reference", "optuna_constrained.jsonl")


def gardner(x1, x2):
    return (math.cos(2 * x1) * math.cos(x2) + math.sin(x1),
            math.cos(x1) * math.cos(x2) - math.sin(x1) * math.sin(x2) - 0.5)


def run(seed, trials):
    sampler = optuna.samplers.TPESampler(
        seed=seed, constraints_func=lambda t: [t.user_attrs["c"]])
    study = optuna.create_study(sampler=sampler)

    def objective(trial):
        f, c = gardner(trial.suggest_float("x1", 0, 6), trial.suggest_float("x2", 0, 6))
        trial.set_user_attr("c", c)
        return f

    study.optimize(objective, n_trials=trials)
    feasible = [t.value for t in study.trials if t.user_attrs["c"] <= 0]
    return min(feasible) if feasible else math.inf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=100)
    args = ap.parse_args()
    with open(OUT, "w") as out:
        for seed in range(args.seeds):
            out.write(json.dumps({"function": "gardner", "sampler": "tpe", "seed": seed,
                                  "trials": args.trials, "best": run(seed, args.trials)}) + "\n")


if __name__ == "__main__":
    main()
