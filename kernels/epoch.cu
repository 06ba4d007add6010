// Per-epoch bookkeeping of a population that stays on the device: the metric sums are
// cleared before an epoch, and every member's parameters are checked for non-finite values
// after it. Only the MemberState array then crosses the bus. CPU twins: the fresh
// EpochMetrics of backend/cpu/population.rs and check_params in src/population/health.rs.
#include "population.cuh"

// Zeroes each member's sums and retires a member whose parameters the last epoch found
// non-finite (the host has recorded its failure): kernels skip it from now on. steps, the
// AdamW scalars and the failure fields stay.
extern "C" __global__ void clear_epoch_sums(MemberState* state, int members) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= members) return;
    MemberState s = state[p];
    if (s.nonfinite_params != 0) s.alive = 0;
    s.train_loss = 0.0;
    s.train_correct = 0;
    s.eval_loss = 0.0;
    s.eval_correct = 0;
    s.nonfinite_params = 0;
    state[p] = s;
}

// grid: (chunks, members), blockDim a multiple of 32. Counts the non-finite values of each
// alive member's slice [offsets[p], offsets[p+1]) into its state.
extern "C" __global__ void check_params(const float* __restrict__ params,
                                        const long long* __restrict__ offsets,
                                        MemberState* state) {
    int p = blockIdx.y;
    // Uniform over the block: every thread of it returns or none does.
    if (!state[p].alive) return;
    unsigned int bad = 0;
    for (long long i = offsets[p] + blockIdx.x * (long long)blockDim.x + threadIdx.x;
         i < offsets[p + 1]; i += (long long)gridDim.x * blockDim.x) {
        bad += isfinite(params[i]) ? 0u : 1u;
    }
    for (int o = 16; o > 0; o >>= 1) bad += __shfl_down_sync(0xffffffffu, bad, o);
    if ((threadIdx.x & 31) == 0 && bad != 0) atomicAdd(&state[p].nonfinite_params, bad);
}
