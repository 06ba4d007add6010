#!/usr/bin/env bash
# Issue 5's comparison: Hyperband and ASHA against full-budget random search over the same
# configurations (the random sampler draws trial n's configuration from (seed, n) alone, so
# trial n is the same configuration under every schedule). Digits over seeds 0-4, MNIST
# (../shared/data/mnist) for seed 0. Prints one row per run and the per-data-set means.
# `pbt`: examples/mnist-pbt.yaml against the same 16 configurations at fixed learning rates.
# `util` (not in `all`): ASHA's utilisation at 27 slots as the sweep grows (81 to 2,187
# trials on digits; about a minute; DRAIN=train for ASHA's `drain: train`).
# `drain` (not in `all`): ASHA on digits, 81 trials, seeds 0-4, with `drain: idle` and then
# `drain: train` (SLOTS=N for another population than the default).
#   bash bench/schedulers.sh [digits|mnist|pbt|util|drain|all]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=target/release/popsweep
out=runs/schedulers
mkdir -p "$out"
shared=$(cd ../shared && pwd)

# sweep FILE BASE SCHEDULER RUN_CAP SEED: a copy of BASE with its schedule replaced.
sweep() {
    local file=$1 base=$2 schedule=$3 cap=$4 seed=$5
    sed -e '/^early_terminate:/,/^  eta: 3/d' -e '/^scheduler:/,$d' -e "s|^run_cap: .*|run_cap: $cap|" \
        -e "s|^seed: .*|seed: $seed|" -e "s|\.\./\.\./shared|$shared|" "$base" >"$file"
    grep -q '^seed:' "$file" || echo "seed: $seed" >>"$file"
    case $schedule in
        full) ;;
        pbt) printf 'scheduler:\n  type: pbt\n  interval: 3\n  quantile: 0.25\n  resample_probability: 0.25\n' >>"$file" ;;
        *) printf 'scheduler:\n  type: %s\n  min_budget: 1\n  eta: 3\n' "$schedule" >>"$file"
           if [ -n "${SLOTS:-}" ]; then printf '  population: %s\n' "$SLOTS" >>"$file"; fi
           if [ -n "${DRAIN:-}" ] && [ "$schedule" = asha ]; then printf '  drain: %s\n' "$DRAIN" >>"$file"; fi ;;
    esac
}

run() { # NAME BASE SCHEDULER RUN_CAP SEED
    local label=$3
    if [ "$3" = asha ] && [ -n "${DRAIN:-}" ]; then label="$3-$DRAIN"; fi
    local name="$1-$label-$4-s$5"
    rm -rf "$out/$name"
    sweep "$out/$name.yaml" "$2" "$3" "$4" "$5"
    "$bin" run "$out/$name.yaml" --out "$out/$name" --quiet --no-sanity >/dev/null
    python3 - "$out/$name/summary.json" "$1" "$label" "$4" "$5" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<7}{sys.argv[3]:<12}{sys.argv[4]:>5}{sys.argv[5]:>5}"
      f"{s['best']['val']:>10.4f}{s['epochs_total']:>8}{s['utilisation']:>8.2f}{s['wall_seconds']:>8.1f}")
PY
}

echo "data   schedule     cap seed  best_val  epochs    util  wall_s"
which=${1:-all}
if [ "$which" = digits ] || [ "$which" = all ]; then
    for seed in 0 1 2 3 4; do
        run digits examples/digits.yaml full 81 $seed
        run digits examples/digits.yaml asha 81 $seed
        run digits examples/digits.yaml full 49 $seed
        run digits examples/digits.yaml hyperband 49 $seed
    done
fi
if [ "$which" = mnist ] || [ "$which" = all ]; then
    run mnist examples/mnist.yaml full 27 0
    run mnist examples/mnist.yaml asha 27 0
    run mnist examples/mnist.yaml full 49 0
    run mnist examples/mnist.yaml hyperband 49 0
fi
if [ "$which" = pbt ] || [ "$which" = all ]; then
    run mnist-pbt examples/mnist-pbt.yaml full 16 0
    run mnist-pbt examples/mnist-pbt.yaml pbt 16 0
fi
if [ "$which" = util ]; then
    for cap in 81 243 729 2187; do
        SLOTS=27 run digits examples/digits.yaml asha $cap 0
    done
fi
if [ "$which" = drain ]; then
    for seed in 0 1 2 3 4; do
        DRAIN=idle run digits examples/digits.yaml asha 81 $seed
        DRAIN=train run digits examples/digits.yaml asha 81 $seed
    done
fi
