// The optimizer over the whole population's flat parameter buffer in one launch, each
// member with its own hyperparameters. MLP training fuses this update into the
// weight-gradient GEMM's epilogue (linear.cu); layered networks (network.rs) run this
// unfused form after their backward pass. CPU twin: src/backend/cpu/optim.rs.
#include "optim.cuh"

// grid: (chunks, members). Member p's trainable parameters are [ranges[2p], ranges[2p+1])
// of every buffer (a layered network keeps batch norm's running statistics, which are not
// trained, behind them); its state must already hold step t's AdamW scalars.
extern "C" __global__ void optimizer_step(const float* __restrict__ grad, float* w, float* m,
                                          float* v, const long long* __restrict__ ranges,
                                          const MemberHparams* __restrict__ hp,
                                          const MemberState* __restrict__ state) {
    int p = blockIdx.y;
    if (!state[p].alive) return;
    MemberHparams h = hp[p];
    MemberState s = state[p];
    for (long long i = ranges[2 * p] + blockIdx.x * (long long)blockDim.x + threadIdx.x;
         i < ranges[2 * p + 1]; i += (long long)gridDim.x * blockDim.x) {
        optimizer_update(h, s, &w[i], grad[i], &m[i], &v[i]);
    }
}

// Sets each member's scalars for its next step (t = steps + 1), as the loss kernel does
// during training: lets optimizer_step be tested alone.
extern "C" __global__ void prepare_step(const MemberHparams* __restrict__ hp, MemberState* state,
                                        int members, int steps_per_epoch) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p < members) step_scalars(hp[p], state[p].steps + 1, steps_per_epoch, &state[p]);
}
