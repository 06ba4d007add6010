#!/usr/bin/env bash
# The GPU check, in two halves.
#
#   scripts/gpu-check.sh build   (here, with the Rust toolchain and nvcc from PyPI)
#       builds the release binary and the CUDA parity tests with --features cuda and gathers
#       them, the peer benchmark and this script into gpu-bundle/ (git-ignored), to carry.
#   scripts/gpu-check.sh run     (on the GPU machine: driver, PyTorch, JAX; no Rust)
#       runs every parity test (failing if any printed SKIP), a short sweep on the GPU, then
#       `popsweep bench --backend cuda` against peer_bench.py --device cuda on the same GPU,
#       and prints a short table. Logs go to $OUT when it is set.
#   scripts/gpu-check.sh quick   (on the GPU machine, when little device time is left)
#       the parity tests, the sweep, and popsweep at P = 256 against the best peers only
#       (torch fused + CUDA graph, JAX vmap): about a minute.
#   scripts/gpu-check.sh kernels (on the GPU machine) each CUDA kernel alone at workload M's
#       sizes (benches/kernels.rs: FLOP/s and bytes/s per kernel), about half a minute.
#   scripts/gpu-check.sh cnn     (on the GPU machine) the CNN workload C at P = 256 on the
#       network kernels against peer_cnn.py's grouped and CUDA-graph peers, then the ViT
#       bench model at P = 256: a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=gpu-bundle

build() {
    : "${NVCC:?set NVCC to nvcc (e.g. from the PyPI nvidia-cuda-nvcc wheel)}"
    export KERNELS_REQUIRE_NVCC=1
    cargo build --release --features cuda
    rm -rf "$BUNDLE" && mkdir -p "$BUNDLE"
    cp target/release/popsweep "$BUNDLE/"
    local name exe
    for name in cuda_parity cuda_network; do
        exe=$(cargo test --release --features cuda --test "$name" --no-run --message-format=json \
            | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$name")
        cp "$exe" "$BUNDLE/$name"
    done
    local kernels
    kernels=$(cargo bench --features cuda --bench kernels --no-run --message-format=json \
        | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "kernels":
        print(m["executable"])')
    cp "$kernels" "$BUNDLE/kernels"
    cp ../shared/bench/peer_bench.py ../shared/bench/peer_cnn.py scripts/gpu-check.sh scripts/gpu_table.py "$BUNDLE/"
    # ASHA over 81 digits trials in 27 slots, its drain idle and trained (see drain()).
    for drain in idle train; do
        sed -e '/^early_terminate:/,/^  eta: 3/d' examples/digits.yaml >"$BUNDLE/asha-$drain.yaml"
        printf 'scheduler:\n  type: asha\n  min_budget: 1\n  eta: 3\n  drain: %s\n' "$drain" \
            >>"$BUNDLE/asha-$drain.yaml"
    done
    strip "$BUNDLE/popsweep" "$BUNDLE/cuda_parity" "$BUNDLE/cuda_network" "$BUNDLE/kernels"
    du -sh "$BUNDLE"
}

run() {
    local out="${OUT:-/tmp/gpu-check}"
    mkdir -p "$out"
    local rc=0
    parity_and_sweep "$out" || rc=1
    echo "== backend auto"
    "$BUNDLE/popsweep" sanity --backend auto 2>&1 | head -n 2 || rc=1
    echo "== bench"
    local args=(--dims 784,256,10 --batch 128 --optimizer adamw --steps 50 --warmup 5 --reps 5)
    local bench=("$BUNDLE/popsweep" bench --backend cuda "${args[@]}" --json)
    for pop in 64 256 1024; do
        "${bench[@]}" --pop "$pop" >>"$out/popsweep.jsonl" || rc=1
    done
    POPSWEEP_GEMM=blocked "${bench[@]}" --pop 256 >>"$out/popsweep.jsonl" || rc=1
    POPSWEEP_GEMM_TILES=small "${bench[@]}" --pop 256 >>"$out/popsweep.jsonl" || rc=1
    POPSWEEP_CUDA_GRAPH=0 "${bench[@]}" --pop 256 >>"$out/popsweep.jsonl" || rc=1
    # The peer's sequential impl (one model at a time) is 90x slower and left out for time.
    python3 "$BUNDLE/peer_bench.py" "${args[@]}" --pop 256 --device cuda --cuda-graph \
        --impl "${PEER_IMPLS:-func,bmm,fused,jax_vmap,jax_scan}" --ceiling --json \
        >"$out/peer.jsonl" 2>"$out/peer.txt" || rc=1
    # popsweep again after the peer, so drift between the two shows.
    "${bench[@]}" --pop 256 >>"$out/popsweep.jsonl" || rc=1
    python3 "$BUNDLE/gpu_table.py" "$out/popsweep.jsonl" "$out/peer.jsonl" "split GEMM, graph" || rc=1
    echo "== TF32 (opt in: POPSWEEP_GEMM=tf32; the peer with --tf32)"
    POPSWEEP_GEMM=tf32 "${bench[@]}" --pop 256 >"$out/popsweep_tf32.jsonl" || rc=1
    python3 "$BUNDLE/peer_bench.py" "${args[@]}" --pop 256 --device cuda --cuda-graph --tf32 \
        --impl "${PEER_TF32_IMPLS:-bmm,fused,jax_vmap,jax_scan}" --json \
        >"$out/peer_tf32.jsonl" 2>"$out/peer_tf32.txt" || rc=1
    POPSWEEP_GEMM=tf32 "${bench[@]}" --pop 256 >>"$out/popsweep_tf32.jsonl" || rc=1
    python3 "$BUNDLE/gpu_table.py" "$out/popsweep_tf32.jsonl" "$out/peer_tf32.jsonl" "tf32 GEMM, graph" || rc=1
    profile "$out" || echo "(profile skipped: ncu failed)"
    POPSWEEP_GEMM=tf32 profile "$out" || echo "(tf32 profile skipped: ncu failed)"
    return $rc
}

# Per-kernel times of two training steps (after three warm-up steps) under Nsight Compute,
# launched one by one (no graph) so each kernel is its own row.
profile() {
    local ncu
    ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1) || return 1
    [ -n "$ncu" ] || return 1
    echo "== per-kernel times (ncu, pop 256, two steps${POPSWEEP_GEMM:+, $POPSWEEP_GEMM})"
    POPSWEEP_CUDA_GRAPH=0 timeout 120 "$ncu" --csv --print-units base --metrics gpu__time_duration.sum \
        --launch-skip 21 --launch-count 14 \
        "$BUNDLE/popsweep" bench --backend cuda --dims 784,256,10 --batch 128 --pop 256 \
        --optimizer adamw --steps 3 --warmup 3 --reps 1 >"$1/ncu${POPSWEEP_GEMM:+_$POPSWEEP_GEMM}.csv" 2>"$1/ncu.err" || return 1
    python3 - "$1/ncu${POPSWEEP_GEMM:+_$POPSWEEP_GEMM}.csv" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head, body = rows[0], rows[1:]
k, grid, v = head.index("Kernel Name"), head.index("Grid Size"), head.index("Metric Value")
for r in body:
    print(f"{r[k]:<28}{r[grid]:>18}{float(r[v].replace(',', '')) / 1000:>10.1f} us")
PY
}

# The parity tests (failing if any printed SKIP) and a sweep on the GPU: both modes start so.
parity_and_sweep() {
    local out=$1 rc=0
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt" || true
    echo "== parity tests (MLP kernels, then the layered networks')"
    local suite
    for suite in cuda_parity cuda_network; do
        "$BUNDLE/$suite" --test-threads=1 --nocapture >"$out/$suite.log" 2>&1 || rc=1
        grep -E "^test |test result|panicked|SKIP" "$out/$suite.log" | grep -v "rng seed" || true
        if grep -q "SKIP" "$out/$suite.log"; then echo "FAIL: a $suite test was skipped"; rc=1; fi
    done
    echo "== sweep on the GPU (embedded digits)"
    "$BUNDLE/popsweep" run --backend cuda --out "$out/run" 2>&1 | tail -n 3 || rc=1
    drain "$out" || rc=1
    return $rc
}

# ASHA's drain on the GPU: `drain: train` trains ~1.9x the epochs of `idle` in slots that
# would idle; on a GPU that should cost little wall time (docs/schedulers.md). Idle twice,
# around train, so drift shows.
drain() {
    local out=$1 rc=0
    echo "== ASHA drain on the GPU (digits, 81 trials, 27 slots): drain, utilisation, epochs, best val, wall s"
    for drain in idle train idle; do
        rm -rf "$out/asha-$drain"
        "$BUNDLE/popsweep" run "$BUNDLE/asha-$drain.yaml" --backend cuda --out "$out/asha-$drain" \
            --quiet --no-sanity >/dev/null 2>"$out/asha-$drain.err" || { rc=1; cat "$out/asha-$drain.err"; continue; }
        python3 - "$out/asha-$drain/summary.json" "$drain" <<'PY' || rc=1
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<6}{s['utilisation']:>6.2f}{s['epochs_total']:>6}{s['best']['val']:>8.4f}{s['wall_seconds']:>7.2f}")
PY
    done
    return $rc
}

quick() {
    local out="${OUT:-/tmp/gpu-check}" rc=0
    mkdir -p "$out"
    parity_and_sweep "$out" || rc=1
    echo "== bench (quick)"
    local args=(--dims 784,256,10 --batch 128 --optimizer adamw --steps 50 --warmup 5 --reps 5)
    local bench=("$BUNDLE/popsweep" bench --backend cuda "${args[@]}" --json --pop 256)
    "${bench[@]}" >>"$out/popsweep.jsonl" || rc=1
    python3 "$BUNDLE/peer_bench.py" "${args[@]}" --pop 256 --device cuda --cuda-graph \
        --impl fused,jax_vmap --ceiling --json >"$out/peer.jsonl" 2>"$out/peer.txt" || rc=1
    "${bench[@]}" >>"$out/popsweep.jsonl" || rc=1
    python3 "$BUNDLE/gpu_table.py" "$out/popsweep.jsonl" "$out/peer.jsonl" "split GEMM, graph" || rc=1
    return $rc
}

kernels() {
    "$BUNDLE/kernels" --bench --warm-up-time 1 --measurement-time 2 --noplot
}

# Workload C (peer_cnn.py's defaults) at P = 256 on the GPU: popsweep, the peer, popsweep.
cnn() {
    local out="${OUT:-/tmp/gpu-check}" rc=0
    mkdir -p "$out"
    local args=(--input 1,28,28 --conv 32,64 --kernel 3 --pool 2 --fc 128 --classes 10
        --batch 128 --pop 256 --optimizer sgd --steps 10 --warmup 2 --reps 3)
    local bench=("$BUNDLE/popsweep" bench --model cnn --backend cuda "${args[@]}" --json)
    "${bench[@]}" >>"$out/popsweep_cnn.jsonl" || rc=1
    python3 "$BUNDLE/peer_cnn.py" "${args[@]}" --device cuda --cuda-graph \
        --impl "${PEER_CNN_IMPLS:-grouped,func}" --ceiling --json \
        >"$out/peer_cnn.jsonl" 2>"$out/peer_cnn.txt" || rc=1
    "${bench[@]}" >>"$out/popsweep_cnn.jsonl" || rc=1
    python3 "$BUNDLE/gpu_table.py" "$out/popsweep_cnn.jsonl" "$out/peer_cnn.jsonl" "split GEMM, graph" || rc=1
    echo "== ViT (the bench model; no peer script exists for it)"
    "$BUNDLE/popsweep" bench --model vit --backend cuda --input 1,28,28 --patch 7 --d-model 64 \
        --heads 4 --layers 2 --mlp-ratio 2 --batch 128 --pop 256 --optimizer adamw \
        --steps 10 --warmup 2 --reps 3 || rc=1
    return $rc
}

case "${1:-}" in
    build) build ;;
    run) run ;;
    quick) quick ;;
    kernels) kernels ;;
    cnn) cnn ;;
    *) echo "usage: $0 build|run|quick|kernels|cnn" >&2; exit 2 ;;
esac
