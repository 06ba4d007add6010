"""Generates the pruner corpus and Optuna's decisions on it: tests/data/pruner_corpus.json.

A corpus is a list of scenarios. Each holds learning curves (step, value) of several
shapes: decaying losses, rising accuracies, plateaus, noise, exact ties (values rounded
to a coarse grid), NaN and infinite values, skipped steps, and per-instance scores in a
shuffled order (the Wilcoxon pruner's setting). Every pruner setting in PRUNERS is
replayed on every scenario through Optuna's ask/tell interface, and every answer of
`trial.should_prune()` is stored, in call order, as a string of 0s and 1s.

The replay (tests/pruners.rs does the same with popsweep): `concurrency` trials run at
once; each round, every running trial reports its next step and asks should_prune; a
pruned trial is told pruned; a trial with no step left is told complete with its `final`
value, or failed when its curve says so; freed slots take the next curves in order.

    python -m venv venv && venv/bin/pip install optuna==5.0.0 scipy
    venv/bin/python bench/pruner_corpus.py   # writes tests/data/pruner_corpus.json
"""
import json
import math
import os
import random
import time
import warnings

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore")

PRUNERS = [
    {"kind": "median"},
    {"kind": "median", "n_startup_trials": 2, "n_warmup_steps": 3, "interval_steps": 2},
    {"kind": "median", "n_startup_trials": 1, "n_min_trials": 3},
    {"kind": "percentile", "percentile": 25.0, "n_startup_trials": 3},
    {"kind": "percentile", "percentile": 75.0, "n_warmup_steps": 2, "interval_steps": 3},
    {"kind": "successive_halving"},
    {"kind": "successive_halving", "min_resource": 1, "reduction_factor": 2},
    {"kind": "successive_halving", "min_resource": 2, "reduction_factor": 3,
     "min_early_stopping_rate": 1, "bootstrap_count": 2},
    {"kind": "hyperband"},
    {"kind": "hyperband", "min_resource": 1, "max_resource": 30, "reduction_factor": 3},
    {"kind": "hyperband", "min_resource": 2, "max_resource": 20, "reduction_factor": 2,
     "bootstrap_count": 1},
    {"kind": "threshold", "lower": 0.0, "upper": 2.0},
    {"kind": "threshold", "upper": 1.0, "n_warmup_steps": 2, "interval_steps": 2},
    {"kind": "patient", "patience": 2},
    {"kind": "patient", "patience": 3, "min_delta": 0.01, "wrapped": {"kind": "median"}},
    {"kind": "wilcoxon"},
    {"kind": "wilcoxon", "p_threshold": 0.2, "n_startup_steps": 5},
]


def build_pruner(spec):
    kind = spec["kind"]
    args = {k: v for k, v in spec.items() if k not in ("kind", "wrapped")}
    if kind == "median":
        return optuna.pruners.MedianPruner(**args)
    if kind == "percentile":
        return optuna.pruners.PercentilePruner(**args)
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**args)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(**args)
    if kind == "threshold":
        return optuna.pruners.ThresholdPruner(**args)
    if kind == "patient":
        wrapped = build_pruner(spec["wrapped"]) if "wrapped" in spec else None
        return optuna.pruners.PatientPruner(wrapped, **args)
    if kind == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(**args)
    raise ValueError(kind)


def curve(rng, shape, n_steps, maximize):
    """One trial's (step, value) pairs and how it ends."""
    steps = list(range(n_steps))
    quality = rng.random()
    values = []
    for s in steps:
        t = (s + 1) / n_steps
        if shape == "decay":
            v = 0.2 + quality * 1.5 * math.exp(-3 * t) + rng.gauss(0, 0.03)
        elif shape == "plateau":
            v = 0.5 + quality - 0.4 * min(t, 0.3) + rng.gauss(0, 0.01)
        elif shape == "noisy":
            v = quality + rng.gauss(0, 0.3)
        else:  # ties: a coarse grid, so many trials share values at a step
            v = round((quality + 0.5 * (1 - t)) * 4) / 4
        values.append(1.0 - v if maximize else v)
    end = "complete"
    r = rng.random()
    if r < 0.06:  # diverges: NaN from some step on
        k = rng.randrange(n_steps)
        values = values[:k] + [math.nan] * (n_steps - k)
    elif r < 0.09:
        values[rng.randrange(n_steps)] = math.inf if rng.random() < 0.5 else -math.inf
    elif r < 0.12:
        end = "fail"
    pairs = list(zip(steps, values))
    if rng.random() < 0.25:  # skipped steps (reports every few steps, irregularly)
        pairs = [p for p in pairs if p[0] == 0 or rng.random() < 0.6]
    final = pairs[-1][1] if math.isfinite(pairs[-1][1]) else math.nan
    return {"points": pairs, "end": end, "final": final}


def instance_curve(rng, difficulty, maximize):
    """Scores of one configuration over shuffled problem instances (steps are ids)."""
    skill = rng.gauss(0, 0.3)
    ids = list(range(len(difficulty)))
    rng.shuffle(ids)
    ids = ids[: rng.randrange(len(ids) // 2, len(ids) + 1)]
    points = []
    for i in ids:
        v = difficulty[i] + skill + rng.gauss(0, 0.2)
        if rng.random() < 0.15:
            v = round(v, 1)  # ties and zero differences
        points.append((i, 1.0 - v if maximize else v))
    end = "fail" if rng.random() < 0.05 else "complete"
    final = sum(v for _, v in points) / len(points)
    return {"points": points, "end": end, "final": final}


def scenarios():
    rng = random.Random(20261206)
    out = []
    shapes = ["decay", "plateau", "noisy", "ties"]
    for k, (maximize, concurrency, n_trials, n_steps) in enumerate(
        [(False, 1, 40, 20), (True, 1, 40, 20), (False, 4, 40, 30), (True, 3, 40, 12),
         (False, 8, 48, 27), (True, 2, 30, 9)]
    ):
        curves = [curve(rng, shapes[i % 4], n_steps, maximize) for i in range(n_trials)]
        out.append({"name": f"curves-{k}", "maximize": maximize,
                    "concurrency": concurrency, "curves": curves})
    for k, (maximize, concurrency) in enumerate([(False, 1), (True, 2)]):
        difficulty = [rng.gauss(0, 1) for _ in range(16)]
        curves = [instance_curve(rng, difficulty, maximize) for _ in range(30)]
        out.append({"name": f"instances-{k}", "maximize": maximize,
                    "concurrency": concurrency, "curves": curves})
    return out


def replay(scenario, spec):
    direction = "maximize" if scenario["maximize"] else "minimize"
    study = optuna.create_study(direction=direction, pruner=build_pruner(spec),
                                study_name=scenario["name"])
    decisions = []
    queue = list(scenario["curves"])
    running = []  # [trial, curve, next index]
    while queue or running:
        while queue and len(running) < scenario["concurrency"]:
            running.append([study.ask(), queue.pop(0), 0])
        still = []
        for entry in running:
            trial, c, i = entry
            if i < len(c["points"]):
                step, value = c["points"][i]
                trial.report(value, step)
                prune = trial.should_prune()
                decisions.append("1" if prune else "0")
                if prune:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    continue
                entry[2] += 1
                still.append(entry)
            elif c["end"] == "fail" or not math.isfinite(c["final"]):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, c["final"])
        running = still
    return "".join(decisions)


def encode(v):
    return v if math.isfinite(v) else str(v)


def main():
    data = scenarios()
    started = time.time()
    answers = []
    for spec in PRUNERS:
        answers.append({"pruner": spec, "decisions": [replay(s, spec) for s in data]})
    for s in data:
        for c in s["curves"]:
            c["points"] = [[step, encode(v)] for step, v in c["points"]]
            c["final"] = encode(c["final"])
    n_curves = sum(len(s["curves"]) for s in data)
    n_calls = sum(len(d) for a in answers for d in a["decisions"])
    n_pruned = sum(d.count("1") for a in answers for d in a["decisions"])
    out = {"optuna": optuna.__version__, "scenarios": data, "answers": answers}
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "pruner_corpus.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"{n_curves} curves, {len(PRUNERS)} pruner settings, {n_calls} decisions "
          f"({n_pruned} prune) in {time.time() - started:.1f} s -> {path}")


if __name__ == "__main__":
    main()
