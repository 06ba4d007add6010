"""Optuna's side of `cargo bench --bench sampler_speed`: the in-process cost of
`study.ask()` with a long history, on the same 10-dimensional space and objective.

    venv/bin/python bench/optuna_speed.py [--only tpe|gp]
"""
import argparse
import statistics
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
DISTS = {f"x{i}": optuna.distributions.FloatDistribution(-1.0, 1.0) for i in range(10)}


def objective(params):
    return sum((v - 0.3) ** 2 for v in params.values())


def objective2(params):
    return sum((v + 0.3) ** 2 for v in params.values())


def values(study, params):
    if len(study.directions) == 1:
        return objective(params)
    return [objective(params), objective2(params)]


def study_with_history(sampler, n):
    two = isinstance(sampler, optuna.samplers.NSGAIISampler)
    study = optuna.create_study(sampler=sampler, directions=["minimize"] * (2 if two else 1))
    warm = optuna.samplers.RandomSampler(seed=1)
    warm_study = optuna.create_study(sampler=warm)
    for _ in range(n):
        t = warm_study.ask(DISTS)
        params = t.params
        v = values(study, params)
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=DISTS,
            **({"values": v} if isinstance(v, list) else {"value": v})))
    return study


def time_ask(study, batch, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        trials = [study.ask(DISTS) for _ in range(batch)]
        times.append((time.perf_counter() - start) * 1e3)
        for t in trials:
            study.tell(t, values(study, t.params))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    cases = [
        ("tpe ask @1000", lambda: optuna.samplers.TPESampler(seed=2), 1000, 1, 21),
        ("tpe-univariate ask @1000", lambda: optuna.samplers.TPESampler(seed=2, multivariate=False), 1000, 1, 21),
        ("gp ask @300", lambda: optuna.samplers.GPSampler(seed=2), 300, 1, 7),
        ("gp ask_batch(64) @300", lambda: optuna.samplers.GPSampler(seed=2), 300, 64, 1),
        ("nsga2 ask @1000 (2 objectives)", lambda: optuna.samplers.NSGAIISampler(seed=2), 1000, 1, 21),
    ]
    print("| case | Optuna median ms |")
    print("| --- | --- |")
    for name, make, history, batch, reps in cases:
        if args.only and not name.startswith(args.only):
            continue
        study = study_with_history(make(), history)
        print(f"| {name} | {time_ask(study, batch, reps):.2f} |", flush=True)


if __name__ == "__main__":
    main()
