#!/usr/bin/env bash
# Issue 3's CPU comparison, in one run on one machine: `popsweep bench` against
# ../shared/bench/peer_bench.py (PyTorch and JAX; set up with ../shared/bench/setup.sh) for
# workloads M and T, alternating peer / popsweep / peer so drift shows, and the ragged
# workload R against M's GFLOP/s. Prints a table of ms/step and ratios (best peer ÷ popsweep).
#   bash bench/cpu_peer.sh            # PEER_PYTHON=... for another interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PEER_PYTHON:-$HOME/.cache/popsweep-peer-venv/bin/python}
IMPLS=${PEER_IMPLS:-bmm,fused,jax_vmap,jax_scan}
cargo build --release -q
bin=target/release/popsweep
out=runs/cpu-peer
mkdir -p "$out"

M=(--dims 784,256,256,10 --batch 128 --pop 64 --optimizer sgd --steps 50)
T=(--dims 64,64,10 --batch 32 --pop 256 --optimizer sgd --steps 200)
R=(--dims 784,256,256,10 --batch 128 --pop 64 --optimizer sgd --steps 50
   --widths-from 32,64,128,256,512 --depths 1-3)

peer() { "$PY" ../shared/bench/peer_bench.py "$@" --threads 2 --impl "$IMPLS" --json 2>/dev/null; }
ours() { "$bin" bench "$@" --threads 2 --backend cpu --json; }

for w in M T; do
    declare -n args=$w
    peer "${args[@]}" >"$out/$w.peer1.jsonl"
    ours "${args[@]}" >"$out/$w.ours.json"
    peer "${args[@]}" >"$out/$w.peer2.jsonl"
done
ours "${R[@]}" >"$out/R.ours.json"

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def lines(p):
    return [json.loads(l) for l in open(os.path.join(out, p)) if l.strip()]
print(f"{'workload':<9}{'popsweep ms':>12}{'GFLOP/s':>9}{'% ceil':>8}{'best peer':>22}{'peer ms':>9}{'ratio':>7}")
m_gflops = None
for w in ["M", "T"]:
    ours = json.load(open(os.path.join(out, f"{w}.ours.json")))
    peers = lines(f"{w}.peer1.jsonl") + lines(f"{w}.peer2.jsonl")
    best = min(peers, key=lambda p: p["ms_per_step_median"])
    ratio = best["ms_per_step_median"] / ours["ms_per_step"]
    if w == "M":
        m_gflops = ours["gflops"]
    print(f"{w:<9}{ours['ms_per_step']:>12.3f}{ours['gflops']:>9.1f}{ours['pct_of_ceiling']:>8.1f}"
          f"{best['impl']:>22}{best['ms_per_step_median']:>9.3f}{ratio:>7.2f}")
r = json.load(open(os.path.join(out, "R.ours.json")))
print(f"{'R':<9}{r['ms_per_step']:>12.3f}{r['gflops']:>9.1f}{r['pct_of_ceiling']:>8.1f}"
      f"{'(M GFLOP/s ÷ R)':>22}{'':>9}{m_gflops / r['gflops']:>7.2f}")
PY
