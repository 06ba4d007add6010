#!/usr/bin/env bash
# Regenerates the README's screenshots (docs/img/): report.html after the default sweep,
# and `popsweep dashboard` during a sweep. Needs Chromium (Debian: apt-get install chromium).
#
#   scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome) ||
  { echo "error: no chromium found (apt-get install chromium)" >&2; exit 2; }
cargo build --release -q
bin=target/release/popsweep
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

# shot FILE HEIGHT URL: a 1100-pixel-wide screenshot, scripts given 3 s to draw and poll.
shot() {
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$tmp/profile" --window-size="1100,$2" --virtual-time-budget=3000 \
    --screenshot="$1" "$3" >/dev/null 2>&1
  echo "wrote $1"
}

"$bin" run --out "$tmp/default" --quiet
"$bin" report "$tmp/default" >/dev/null
shot docs/img/report.png 1500 "file://$tmp/default/report.html"

# A sweep slow enough to watch: ASHA over 4 slots of wide models, one thread.
cat > "$tmp/live.yaml" <<'YAML'
name: live
method: random
metric: {name: val_accuracy, goal: maximize}
run_cap: 60
scheduler: {type: asha, min_budget: 1, eta: 3, population: 4}
parameters:
  lr: {distribution: log_uniform_values, min: 0.003, max: 0.3}
  width: {values: [256, 512]}
  dropout: {distribution: uniform, min: 0.0, max: 0.3}
train: {epochs: 9, batch_size: 16}
model: {depth: 3}
seed: 1
YAML
"$bin" run "$tmp/live.yaml" --out "$tmp/live" --quiet --no-sanity --threads 1 >/dev/null &
pids+=($!)
until [ -s "$tmp/live/trials.jsonl" ]; do sleep 0.2; done
"$bin" dashboard "$tmp/live" --port 0 > "$tmp/dashboard.out" &
pids+=($!)
until grep -q http "$tmp/dashboard.out"; do sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$tmp/dashboard.out")
sleep 4
shot docs/img/dashboard.png 1500 "$url"
