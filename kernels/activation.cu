// ReLU of a layered network's blocks, in place, for the whole population in one launch per
// pass and layer index. CPU twin: relu_forward / relu_backward in
// src/backend/cpu/activation.rs. (The MLP population fuses ReLU into its GEMM epilogues,
// linear.cu; a layered network also puts batch norm and pooling between a layer and its
// activation.)
#include "activation.cuh"
#include "element.cuh"
#include "population.cuh"

// grid: (chunks, problems).
extern "C" __global__ void relu_forward(const ElementProblem* __restrict__ problems, int rows,
                                        float* acts, const MemberState* __restrict__ state) {
    const ElementProblem p = problems[blockIdx.y];
    if (state != nullptr && !state[p.member].alive) return;
    const long long total = (long long)rows * p.width;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x)
        acts[p.off + e] = relu(acts[p.off + e]);
}

// The gradient kept where the block's final value is positive (after any dropout in place,
// which is zero exactly where it dropped): no pre-activation is stored.
extern "C" __global__ void relu_backward(const ElementProblem* __restrict__ problems, int rows,
                                         const float* __restrict__ acts, float* deltas,
                                         const MemberState* __restrict__ state) {
    const ElementProblem p = problems[blockIdx.y];
    if (!state[p.member].alive) return;
    const long long total = (long long)rows * p.width;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x)
        if (!(acts[p.off + e] > 0.0f)) deltas[p.off + e] = 0.0f;
}
