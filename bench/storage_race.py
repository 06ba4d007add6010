"""Ask + tell throughput on PostgreSQL: popsweep's database storage against Optuna 5's
RDBStorage, on the same server, alternating, at several worker counts (issue 22).

A study over three parameters already holds 1,000 complete trials; then W workers ask and
tell with TPE as fast as they can for --seconds. Optuna's workers are processes (one
RDBStorage and TPESampler each, as its docs run distributed optimisation); popsweep's are
threads of `cargo bench --bench storage_race` (each with a connection and a study of its
own). Each run gets a fresh database.

    python bench/storage_race.py --url postgresql://popsweep:popsweep@127.0.0.1:54329/postgres
        [--workers 1 8 32] [--seconds 10] [--rounds 2]

Needs optuna==5.0.0 and psycopg2-binary in the Python running it. Prints one JSON line per
run, then a table of medians with popsweep's throughput ratio over Optuna's.
"""

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

import psycopg2


def value(p):
    import math

    return p["x"] ** 2 + abs(math.log(p["y"])) + p["k"]


def distributions():
    import optuna

    return {
        "x": optuna.distributions.FloatDistribution(-5.0, 5.0),
        "y": optuna.distributions.FloatDistribution(0.001, 1.0, log=True),
        "k": optuna.distributions.CategoricalDistribution([1, 2, 3, 4]),
    }


def optuna_worker(url, name, seed, seconds, ready, out):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=name,
        storage=optuna.storages.RDBStorage(url),
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    dists = distributions()
    ready.wait()
    deadline = time.perf_counter() + seconds
    took = []
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        trial = study.ask(dists)
        study.tell(trial, value(trial.params))
        took.append((time.perf_counter() - start) * 1e3)
    out.put(took)


def optuna_run(url, workers, seconds, prefill):
    import optuna
    import random

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"race-{os.getpid()}-{workers}"
    study = optuna.create_study(study_name=name, storage=optuna.storages.RDBStorage(url))
    rng = random.Random(0)
    dists = distributions()
    trials = []
    for _ in range(prefill):
        p = {"x": rng.uniform(-5, 5), "y": 10 ** rng.uniform(-3, 0), "k": rng.choice([1, 2, 3, 4])}
        trials.append(optuna.trial.create_trial(params=p, distributions=dists, value=value(p)))
    study.add_trials(trials)
    ready, out = mp.Barrier(workers + 1), mp.Queue()
    procs = [
        mp.Process(target=optuna_worker, args=(url, name, w + 1, seconds, ready, out))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    ready.wait()
    start = time.perf_counter()
    took = [x for _ in procs for x in out.get()]
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
    took.sort()
    at = lambda q: took[round((len(took) - 1) * q)]
    return {
        "system": "optuna",
        "workers": workers,
        "cycles": len(took),
        "per_second": len(took) / elapsed,
        "median_ms": at(0.5),
        "p99_ms": at(0.99),
    }


def popsweep_run(url, workers, seconds, prefill):
    env = dict(os.environ, POPSWEEP_BENCH_PG=url)
    args = ["cargo", "bench", "-q", "--bench", "storage_race", "--"]
    args += ["--workers", str(workers), "--seconds", str(seconds), "--prefill", str(prefill)]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def fresh_database(admin, name):
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    base = admin.rsplit("/", 1)[0]
    return f"{base}/{name}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="admin URL of the PostgreSQL server")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--prefill", type=int, default=1000)
    a = ap.parse_args()
    results = []
    for r in range(a.rounds):
        for w in a.workers:
            for system in ("popsweep", "optuna"):
                db = fresh_database(a.url, f"race_{system}_{w}_{r}")
                if system == "popsweep":
                    res = popsweep_run(db, w, a.seconds, a.prefill)
                else:
                    sa = db.replace("postgresql://", "postgresql+psycopg2://", 1)
                    res = optuna_run(sa, w, a.seconds, a.prefill)
                res["round"] = r
                print(json.dumps(res), flush=True)
                results.append(res)
    print()
    print("| workers | popsweep ask+tell/s | Optuna ask+tell/s | ratio | popsweep median / p99 ms | Optuna median / p99 ms |")
    print("|---|---|---|---|---|---|")
    for w in a.workers:
        med = lambda s, k: statistics.median(x[k] for x in results if x["system"] == s and x["workers"] == w)
        ps, op = med("popsweep", "per_second"), med("optuna", "per_second")
        print(
            f"| {w} | {ps:.1f} | {op:.1f} | {ps / op:.1f}x | {med('popsweep', 'median_ms'):.2f} / "
            f"{med('popsweep', 'p99_ms'):.2f} | {med('optuna', 'median_ms'):.2f} / {med('optuna', 'p99_ms'):.2f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
