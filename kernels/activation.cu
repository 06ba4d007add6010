// Activations of a layered network's blocks, in place, for the whole population in one
// launch per pass and layer index: ReLU, leaky ReLU, tanh and the exact GELU. CPU twin:
// src/backend/cpu/activation.rs. (The MLP population fuses ReLU into its GEMM epilogues,
// linear.cu; a layered network also puts batch norm, pooling and LayerNorm between a
// layer and its activation.)
//
// ReLU's backward pass reads the block's final values (positive exactly where both ReLU
// and any dropout after it let the element through); the others need their input, which
// the forward pass saves in the saved buffer.
#include "activation.cuh"
#include "element.cuh"
#include "population.cuh"

#define ACT_RELU 0
#define ACT_LEAKY_RELU 1
#define ACT_TANH 2
#define ACT_GELU 3
#define LEAKY_SLOPE 0.01f  // src/model/hparams.rs LEAKY_SLOPE

__device__ __forceinline__ float activate(int kind, float z) {
    switch (kind) {
        case ACT_LEAKY_RELU: return z > 0.0f ? z : LEAKY_SLOPE * z;
        case ACT_TANH: return tanhf(z);
        case ACT_GELU: return z * normcdff(z);
        default: return relu(z);
    }
}

// act'(z), for the kinds other than ReLU.
__device__ __forceinline__ float slope(int kind, float z) {
    switch (kind) {
        case ACT_LEAKY_RELU: return z > 0.0f ? 1.0f : LEAKY_SLOPE;
        case ACT_TANH: {
            float t = tanhf(z);
            return 1.0f - t * t;
        }
        default:  // ACT_GELU: Φ(z) + z·φ(z)
            return normcdff(z) + z * 0.3989422804f * expf(-0.5f * z * z);
    }
}

// grid: (chunks, problems).
extern "C" __global__ void activation_forward(const ElementProblem* __restrict__ problems, int rows,
                                              float* acts, float* saved,
                                              const MemberState* __restrict__ state) {
    const ElementProblem p = problems[blockIdx.y];
    if (state != nullptr && !state[p.member].alive) return;
    const long long total = (long long)rows * p.width;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        float z = acts[p.off + e];
        if (p.kind != ACT_RELU) saved[p.aux_off + e] = z;
        acts[p.off + e] = activate(p.kind, z);
    }
}

extern "C" __global__ void activation_backward(const ElementProblem* __restrict__ problems, int rows,
                                               const float* __restrict__ acts,
                                               const float* __restrict__ saved, float* deltas,
                                               const MemberState* __restrict__ state) {
    const ElementProblem p = problems[blockIdx.y];
    if (!state[p.member].alive) return;
    const long long total = (long long)rows * p.width;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        if (p.kind == ACT_RELU) {
            if (!(acts[p.off + e] > 0.0f)) deltas[p.off + e] = 0.0f;
        } else {
            deltas[p.off + e] *= slope(p.kind, saved[p.aux_off + e]);
        }
    }
}
