"""Optuna's TPESampler (and GPSampler) with constraints on two constrained problems, the
best feasible value of each run stored in bench/reference/optuna_constrained.jsonl;
benches/constrained.rs compares popsweep's.

- Gardner et al. (2014): minimise cos(2·x1)·cos(x2) + sin(x1) subject to
  cos(x1)·cos(x2) − sin(x1)·sin(x2) ≤ 0.5 over [0, 6]² (optimum −2; the unconstrained
  optimum is feasible, so the constraint seldom binds).
- Gramacy et al. (2016): minimise x1 + x2 subject to
  1.5 − x1 − 2·x2 − 0.5·sin(2π(x1² − 2·x2)) ≤ 0 and x1² + x2² − 1.5 ≤ 0 over [0, 1]²
  (optimum 0.5998, on the constraint's boundary).

    venv/bin/python bench/optuna_constrained_reference.py --seeds 20 --trials 100 [--gp-seeds 10]
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
            [math.cos(x1) * math.cos(x2) - math.sin(x1) * math.sin(x2) - 0.5])


def gramacy(x1, x2):
    return (x1 + x2,
            [1.5 - x1 - 2 * x2 - 0.5 * math.sin(2 * math.pi * (x1 * x1 - 2 * x2)),
             x1 * x1 + x2 * x2 - 1.5])


PROBLEMS = {"gardner": (gardner, 6.0), "gramacy": (gramacy, 1.0)}


def run(problem, sampler_name, seed, trials):
    f, high = PROBLEMS[problem]
    constraints = lambda t: t.user_attrs["c"]
    sampler = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, constraints_func=constraints),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed, constraints_func=constraints),
    }[sampler_name]()
    study = optuna.create_study(sampler=sampler)

    def objective(trial):
        value, c = f(trial.suggest_float("x1", 0, high), trial.suggest_float("x2", 0, high))
        trial.set_user_attr("c", c)
        return value

    study.optimize(objective, n_trials=trials)
    feasible = [t.value for t in study.trials if all(c <= 0 for c in t.user_attrs["c"])]
    return min(feasible) if feasible else math.inf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--gp-seeds", type=int, default=0)
    args = ap.parse_args()
    with open(OUT, "w") as out:
        for problem in PROBLEMS:
            for sampler, seeds in [("tpe", args.seeds), ("gp", args.gp_seeds)]:
                for seed in range(seeds):
                    best = run(problem, sampler, seed, args.trials)
                    out.write(json.dumps({"function": problem, "sampler": sampler,
                                          "seed": seed, "trials": args.trials,
                                          "best": best}) + "\n")
                    out.flush()


if __name__ == "__main__":
    main()
