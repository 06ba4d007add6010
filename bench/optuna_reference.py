"""Runs Optuna's TPESampler and GPSampler on bench/test_functions.py and stores the final
simple regret of each (function, sampler, seed) in bench/reference/optuna.jsonl, one JSON
line per run, appending (so a long run can be resumed). Runs already present are skipped.

    python -m venv venv && venv/bin/pip install optuna==5.0.0 torch scipy
    venv/bin/python bench/optuna_reference.py --samplers tpe,gp --seeds 20 --trials 100

Optuna's GPSampler takes about 30 s per 100-trial run on the 2-core machine; its results
are stored here rather than rerun by every comparison.
"""
import argparse
import json
import os
import time

import optuna

from test_functions import FUNCTIONS, HELD_OUT

optuna.logging.set_verbosity(optuna.logging.WARNING)


def suggest(trial, space):
    params = {}
    for name, spec in space.items():
        cond = spec.get("condition")
        if cond:
            (parent, value), = cond.items()
            if params.get(parent) != value:
                continue
        if "values" in spec:
            params[name] = trial.suggest_categorical(name, spec["values"])
        elif spec.get("distribution") == "int_uniform":
            params[name] = trial.suggest_int(name, spec["min"], spec["max"])
        else:
            params[name] = trial.suggest_float(name, spec["min"], spec["max"], log=spec.get("log", False))
    return params


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samplers", default="tpe,gp")
    ap.add_argument("--functions", default=",".join(FUNCTIONS), help="also held-out ones: " + ",".join(HELD_OUT))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "reference", "optuna.jsonl"))
    args = ap.parse_args()
    done = set()
    if os.path.exists(args.out):
        for line in open(args.out):
            r = json.loads(line)
            done.add((r["function"], r["sampler"], r["seed"], r["trials"]))
    for sampler_name in args.samplers.split(","):
        for fname in args.functions.split(","):
            space, f, optimum = {**FUNCTIONS, **HELD_OUT}[fname]
            for seed in range(args.seeds):
                if (fname, sampler_name, seed, args.trials) in done:
                    continue
                sampler = optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe" else optuna.samplers.GPSampler(seed=seed)
                study = optuna.create_study(sampler=sampler)
                t0 = time.time()
                study.optimize(lambda t: f(suggest(t, space)), n_trials=args.trials)
                row = {
                    "function": fname, "sampler": sampler_name, "seed": seed, "trials": args.trials,
                    "regret": study.best_value - optimum, "seconds": time.time() - t0,
                    "optuna": optuna.__version__,
                }
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(row, flush=True)


if __name__ == "__main__":
    main()
