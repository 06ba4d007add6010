#!/usr/bin/env bash
# The MNIST race (issue 26): runs examples/mnist-race.yaml for each seed (default 0 1 2)
# and prints, per seed and as medians, the wall time, the best validation and its test
# accuracy, and the wall time at which the sweep first printed a validation of 0.975 and
# 0.980: a rung leader, or the best any trial had shown at any epoch (`seen`), as a user
# watching would see it (lines are timestamped as they arrive, every 2 s or so, so these
# times are upper bounds). Run by hand, on an otherwise idle machine:
#
#   cargo build --release && bench/race.sh [SEED ...]
#
# Method (tpe, gp, ...) can be overridden: METHOD=tpe bench/race.sh 0; and the sweep
# file itself: SWEEP=my-race.yaml bench/race.sh 0 (its data paths as in the example).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/popsweep
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
if [ $# -gt 0 ]; then seeds=("$@"); else seeds=(0 1 2); fi
shared="$(cd ../shared && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$bin" "$shared" "$work" "${METHOD:-}" "${SWEEP:-examples/mnist-race.yaml}" "${seeds[@]}" <<'PY'
import json, re, statistics, subprocess, sys, time
bin_, shared, work, method, source, seeds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
text = open(source).read().replace("../../shared", shared)
if method:
    text = re.sub(r"^method: .*$", f"method: {method}", text, flags=re.M)
rows = []
for seed in seeds:
    sweep = f"{work}/race-{seed}.yaml"
    open(sweep, "w").write(re.sub(r"^seed: .*$", f"seed: {seed}", text, flags=re.M))
    out = f"{work}/run-{seed}"
    start = time.monotonic()
    proc = subprocess.Popen([bin_, "run", sweep, "--out", out, "--no-sanity"],
                            stdout=subprocess.PIPE, text=True)
    reached = {0.975: None, 0.980: None}
    for line in proc.stdout:
        values = re.findall(r"(?:leader trial \d+ val_accuracy|seen) ([0-9.]+)", line)
        for t in reached:
            if reached[t] is None and any(float(v) >= t for v in values):
                reached[t] = time.monotonic() - start
    proc.wait()
    wall = time.monotonic() - start
    s = json.load(open(f"{out}/summary.json"))
    rows.append((seed, wall, s["best"]["val"], s["best"]["test_accuracy"], reached[0.975], reached[0.980]))
fmt = lambda v: "-" if v is None else f"{v:.1f}"
print(f"{'seed':>4} {'wall s':>7} {'best val':>9} {'its test':>9} {'t(0.975) s':>11} {'t(0.980) s':>11}")
for seed, wall, val, test, a, b in rows:
    print(f"{seed:>4} {wall:>7.1f} {val:>9.4f} {test:>9.4f} {fmt(a):>11} {fmt(b):>11}")
med = lambda xs: statistics.median(xs) if xs and None not in xs else None
print(f"{'med':>4} {statistics.median(r[1] for r in rows):>7.1f} "
      f"{statistics.median(r[2] for r in rows):>9.4f} {statistics.median(r[3] for r in rows):>9.4f} "
      f"{fmt(med([r[4] for r in rows])):>11} {fmt(med([r[5] for r in rows])):>11}")
PY
