// Dropout and spatial dropout of a layered network's blocks, in place, for the whole
// population in one launch per pass and layer index. CPU twin: src/backend/cpu/dropout.rs
// and the spatial dropout of src/backend/cpu/network/classic.rs.
//
// No mask is stored: the backward pass draws the same counter-based words again. It runs
// after the loss kernel has advanced the member's step, so it keys on steps − 1, the step
// the forward pass drew with. Evaluation launches neither.
#include "dropout.cuh"
#include "element.cuh"
#include "population.cuh"

// The scale of element e (row-major over rows × width) at `step`: per value, or with
// `channels` per sample and channel plane (word index sample·channels + channel).
__device__ __forceinline__ float element_scale(const ElementProblem& p, const MemberHparams& h,
                                               unsigned long long step, long long e) {
    if (p.channels == 0) return dropout_scale(h.seed, step, p.layer, e, h.dropout);
    long long plane = p.width / p.channels;
    long long word = (e / p.width) * p.channels + (e % p.width) / plane;
    return stream_dropout_scale(h.seed, STREAM_SPATIAL_DROPOUT, step, p.layer, word, h.dropout);
}

// grid: (chunks, problems). `values` is the activations (forward) or deltas (backward).
__device__ void apply_dropout(const ElementProblem* __restrict__ problems, int rows, float* values,
                              const MemberHparams* __restrict__ hp, const MemberState* __restrict__ state,
                              bool backward) {
    const ElementProblem p = problems[blockIdx.y];
    const MemberState& s = state[p.member];
    const MemberHparams h = hp[p.member];
    if (!s.alive || !(h.dropout > 0.0f)) return;
    const unsigned long long step = backward ? s.steps - 1 : s.steps;
    const long long total = (long long)rows * p.width;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x)
        values[p.off + e] *= element_scale(p, h, step, e);
}

extern "C" __global__ void dropout_forward(const ElementProblem* __restrict__ problems, int rows,
                                           float* acts, const MemberHparams* __restrict__ hp,
                                           const MemberState* __restrict__ state) {
    apply_dropout(problems, rows, acts, hp, state, false);
}

extern "C" __global__ void dropout_backward(const ElementProblem* __restrict__ problems, int rows,
                                            float* deltas, const MemberHparams* __restrict__ hp,
                                            const MemberState* __restrict__ state) {
    apply_dropout(problems, rows, deltas, hp, state, true);
}
