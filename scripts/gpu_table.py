#!/usr/bin/env python3
"""Prints the GPU check's table: popsweep's bench rows and the peer's, as ratios."""
import json
import sys


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


ours, peer = rows(sys.argv[1]), rows(sys.argv[2])
print(f"{'impl':<34}{'pop':>6}{'ms/step':>10}{'GFLOP/s':>10}{'launch/step':>12}{'loss_last':>11}")
for r in ours:
    name = "popsweep " + r.get("variant", "cuda")
    print(f"{name:<34}{r['pop']:>6}{r['ms_per_step']:>10.3f}{r['gflops']:>10.0f}"
          f"{r.get('launches_per_step', ''):>12}{r['loss_last']:>11.4f}")
best = None
for r in peer:
    if r.get("impl") == "sgemm_ceiling" or "ms_per_step_median" not in r:
        if "skipped" in r or "error" in r:
            print(f"{r['impl']:<34} {r.get('skipped') or r.get('error')}")
        continue
    print(f"{r['impl']:<34}{r['pop']:>6}{r['ms_per_step_median']:>10.3f}{r['gflops_median']:>10.0f}"
          f"{'':>12}{r.get('loss_last', float('nan')):>11.4f}")
    if best is None or r["ms_per_step_median"] < best["ms_per_step_median"]:
        best = r
variant = sys.argv[3] if len(sys.argv) > 3 else "split GEMM, graph"
same = [r for r in ours if r["pop"] == (best or {}).get("pop") and r.get("variant", "").startswith(variant)]
if best and same:
    mine = min(r["ms_per_step"] for r in same)
    print(f"best peer: {best['impl']} {best['ms_per_step_median']:.3f} ms/step; popsweep ({variant}) {mine:.3f} ms/step; "
          f"speed-up {best['ms_per_step_median'] / mine:.2f}x (target >= 2x, step <= 1.0 ms)")
    print(f"popsweep GEMM ceiling {same[0]['sgemm_ceiling_gflops']:.0f} GFLOP/s; device {same[0]['device']}")
