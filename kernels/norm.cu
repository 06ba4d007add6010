// Batch normalisation of the whole population: each member's channels over the batch and
// their spatial positions. CPU twin: src/backend/cpu/norm.rs (batch_stats, norm_forward,
// norm_backward, update_running).
//
// A training step normalises with the batch's statistics (batch_norm_stats, one block per
// member and channel, two passes in double so the f32 result does not depend on the
// reduction's order), and the running statistics then move towards them
// (batch_norm_running, after the loss kernel: a member that diverged in this step keeps its
// old running statistics, as on the CPU). Evaluation normalises with the running ones.
#include "population.cuh"

struct NormProblem {
    long long x_off;      // input block (rows, C, S) in the activations (deltas) buffer
    long long y_off;      // output block, likewise
    long long gamma_off;  // γ (C) then β (C) in the parameters (gradient)
    long long state_off;  // running mean (C) then running variance (C) in the parameters
    long long stats_off;  // the batch's mean, variance and 1/√(var + ε) (3·C) in the stats buffer
    int channels, spatial;
    int member;
    int has_dx;           // whether the input is a block of the member's (not the minibatch)
};
static_assert(sizeof(NormProblem) == 56, "NormProblem layout (src/backend/cuda/layout.rs)");

#define NORM_THREADS 256
#define NORM_EPS 1e-5f       // src/backend/cpu/norm.rs NORM_EPS
#define NORM_MOMENTUM 0.1f   // and NORM_MOMENTUM

// The block's sum of `v` over its threads, in a fixed order; every thread gets it.
__device__ double block_sum(double v) {
    __shared__ double part[NORM_THREADS];
    __syncthreads();
    part[threadIdx.x] = v;
    __syncthreads();
    for (int stride = NORM_THREADS / 2; stride > 0; stride /= 2) {
        if ((int)threadIdx.x < stride) part[threadIdx.x] += part[threadIdx.x + stride];
        __syncthreads();
    }
    return part[0];
}

// Element j of channel c over the batch: sample j / S, position j % S.
__device__ __forceinline__ long long channel_at(const NormProblem& p, int c, int j) {
    return ((long long)(j / p.spatial) * p.channels + c) * p.spatial + j % p.spatial;
}

// grid: (channels of the widest, problems), NORM_THREADS threads.
extern "C" __global__ void __launch_bounds__(NORM_THREADS)
batch_norm_stats(const NormProblem* __restrict__ problems, int rows, const float* __restrict__ acts,
                 float* stats, const MemberState* __restrict__ state) {
    const NormProblem p = problems[blockIdx.y];
    const int c = blockIdx.x;
    if (c >= p.channels || !state[p.member].alive) return;
    const int n = rows * p.spatial;
    const float* x = acts + p.x_off;
    double sum = 0.0;
    for (int j = threadIdx.x; j < n; j += NORM_THREADS) sum += x[channel_at(p, c, j)];
    const float mean = (float)(block_sum(sum) / n);
    double squares = 0.0;
    for (int j = threadIdx.x; j < n; j += NORM_THREADS) {
        float d = x[channel_at(p, c, j)] - mean;
        squares += (double)d * d;
    }
    const float var = (float)(block_sum(squares) / n);
    if (threadIdx.x == 0) {
        float* s = stats + p.stats_off;
        s[c] = mean;
        s[p.channels + c] = var;
        s[2 * p.channels + c] = 1.0f / sqrtf(var + NORM_EPS);
    }
}

// y = γ·(x − mean)·invstd + β, with the batch's statistics (`batch_stats`) or the running
// ones. grid: (chunks, problems).
extern "C" __global__ void batch_norm_forward(const NormProblem* __restrict__ problems, int rows,
                                              float* acts, const float* __restrict__ params,
                                              const float* __restrict__ stats, int batch_stats,
                                              const MemberState* __restrict__ state) {
    const NormProblem p = problems[blockIdx.y];
    if (state != nullptr && !state[p.member].alive) return;
    const int size = p.channels * p.spatial;
    const long long total = (long long)rows * size;
    const float* gamma = params + p.gamma_off;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        int c = (int)(e % size) / p.spatial;
        float mean, invstd;
        if (batch_stats) {
            mean = stats[p.stats_off + c];
            invstd = stats[p.stats_off + 2 * p.channels + c];
        } else {
            mean = params[p.state_off + c];
            invstd = 1.0f / sqrtf(params[p.state_off + p.channels + c] + NORM_EPS);
        }
        acts[p.y_off + e] = (acts[p.x_off + e] - mean) * (gamma[c] * invstd) + gamma[p.channels + c];
    }
}

// One block per member and channel: dγ = Σ dy·x̂ and dβ = Σ dy into the gradient, then (with
// has_dx) the input's gradient, with the batch's statistics
//   dx = invstd/N · (N·γ·dy − γ·dβ − x̂·γ·dγ),  N = rows·S,
// or with the running ones (evaluation-mode training) dx = γ·invstd·dy.
extern "C" __global__ void __launch_bounds__(NORM_THREADS)
batch_norm_backward(const NormProblem* __restrict__ problems, int rows, const float* __restrict__ acts,
                    const float* __restrict__ params, const float* __restrict__ stats, int batch_stats,
                    float* deltas, float* grad, const MemberState* __restrict__ state) {
    const NormProblem p = problems[blockIdx.y];
    const int c = blockIdx.x;
    if (c >= p.channels || !state[p.member].alive) return;
    const int n = rows * p.spatial;
    const float* x = acts + p.x_off;
    const float* dy = deltas + p.y_off;
    float mean, invstd;
    if (batch_stats) {
        mean = stats[p.stats_off + c];
        invstd = stats[p.stats_off + 2 * p.channels + c];
    } else {
        mean = params[p.state_off + c];
        invstd = 1.0f / sqrtf(params[p.state_off + p.channels + c] + NORM_EPS);
    }
    double dgamma = 0.0, dbeta = 0.0;
    for (int j = threadIdx.x; j < n; j += NORM_THREADS) {
        long long at = channel_at(p, c, j);
        float g = dy[at];
        dgamma += (double)(g * (x[at] - mean) * invstd);
        dbeta += (double)g;
    }
    const float dg = (float)block_sum(dgamma), db = (float)block_sum(dbeta);
    if (threadIdx.x == 0) {
        grad[p.gamma_off + c] = dg;
        grad[p.gamma_off + p.channels + c] = db;
    }
    if (!p.has_dx) return;
    const float gamma = params[p.gamma_off + c];
    const float count = (float)n;
    for (int j = threadIdx.x; j < n; j += NORM_THREADS) {
        long long at = channel_at(p, c, j);
        float g = dy[at];
        float v;
        if (batch_stats) {
            float xhat = (x[at] - mean) * invstd;
            v = invstd / count * (count * gamma * g - gamma * db - xhat * gamma * dg);
        } else {
            v = gamma * invstd * g;
        }
        deltas[p.x_off + at] = v;
    }
}

// The running statistics of every alive member towards this step's batch statistics:
// r ← (1 − m)·r + m·b, the variance unbiased by N/(N − 1). grid: (problems), threads over
// channels.
extern "C" __global__ void batch_norm_running(const NormProblem* __restrict__ problems, int rows,
                                              const float* __restrict__ stats, float* params,
                                              const MemberState* __restrict__ state) {
    const NormProblem p = problems[blockIdx.x];
    if (!state[p.member].alive) return;
    const int count = rows * p.spatial;
    const float unbias = (float)count / (float)(count > 1 ? count - 1 : 1);
    for (int c = threadIdx.x; c < p.channels; c += blockDim.x) {
        float* mean = params + p.state_off;
        float* var = mean + p.channels;
        mean[c] = (1.0f - NORM_MOMENTUM) * mean[c] + NORM_MOMENTUM * stats[p.stats_off + c];
        var[c] = (1.0f - NORM_MOMENTUM) * var[c] +
                 NORM_MOMENTUM * stats[p.stats_off + p.channels + c] * unbias;
    }
}

// LayerNorm: each token of each sample normalised over its `dim` features (CPU twin:
// layer_norm_forward / layer_norm_backward in src/backend/cpu/norm.rs), one thread per
// token row (dim is at most a few hundred), summing in the CPU's order.
struct LayerNormProblem {
    long long x_off;      // input block (rows·tokens, dim) in acts/deltas
    long long y_off;      // output block
    long long gamma_off;  // γ (dim) then β (dim) in params/grad
    long long stats_off;  // each token row's mean, then each one's 1/√(var + ε), in stats
    int tokens, dim;
    int member;
    int has_dx;
};
static_assert(sizeof(LayerNormProblem) == 48, "LayerNormProblem layout (src/backend/cuda/layout.rs)");

#define ROW_LOOP(count) \
    for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < (count); r += (long long)gridDim.x * blockDim.x)

// grid: (chunks, problems), threads over the rows·tokens token rows; the statistics go to
// stats (mean at stats_off + row, 1/√(var + ε) at stats_off + rows·tokens + row).
extern "C" __global__ void layer_norm_forward(const LayerNormProblem* __restrict__ problems, int rows,
                                              float* acts, const float* __restrict__ params,
                                              float* stats, const MemberState* __restrict__ state) {
    const LayerNormProblem p = problems[blockIdx.y];
    if (state != nullptr && !state[p.member].alive) return;
    const long long count = (long long)rows * p.tokens;
    const float* gamma = params + p.gamma_off;
    const float* beta = gamma + p.dim;
    const float n = (float)p.dim;
    ROW_LOOP(count) {
        const float* x = acts + p.x_off + r * p.dim;
        float* y = acts + p.y_off + r * p.dim;
        float sum = 0.0f;
        for (int c = 0; c < p.dim; ++c) sum += x[c];
        const float mean = sum / n;
        float squares = 0.0f;
        for (int c = 0; c < p.dim; ++c) squares += (x[c] - mean) * (x[c] - mean);
        const float inv = 1.0f / sqrtf(squares / n + NORM_EPS);
        for (int c = 0; c < p.dim; ++c) y[c] = (x[c] - mean) * inv * gamma[c] + beta[c];
        stats[p.stats_off + r] = mean;
        stats[p.stats_off + count + r] = inv;
    }
}

// The input's gradient per token row: dx = invstd·(γ·dy − (Σγ·dy + x̂·Σγ·dy·x̂)/dim).
extern "C" __global__ void layer_norm_backward(const LayerNormProblem* __restrict__ problems, int rows,
                                               const float* __restrict__ acts,
                                               const float* __restrict__ params,
                                               const float* __restrict__ stats, float* deltas,
                                               const MemberState* __restrict__ state) {
    const LayerNormProblem p = problems[blockIdx.y];
    if (!p.has_dx || !state[p.member].alive) return;
    const long long count = (long long)rows * p.tokens;
    const float* gamma = params + p.gamma_off;
    const float n = (float)p.dim;
    ROW_LOOP(count) {
        const float* x = acts + p.x_off + r * p.dim;
        const float* dy = deltas + p.y_off + r * p.dim;
        float* dx = deltas + p.x_off + r * p.dim;
        const float mean = stats[p.stats_off + r], inv = stats[p.stats_off + count + r];
        float sum = 0.0f, dot = 0.0f;
        for (int c = 0; c < p.dim; ++c) {
            float g = dy[c] * gamma[c];
            sum += g;
            dot += g * ((x[c] - mean) * inv);
        }
        for (int c = 0; c < p.dim; ++c) {
            float xhat = (x[c] - mean) * inv;
            dx[c] = inv * (dy[c] * gamma[c] - (sum + xhat * dot) / n);
        }
    }
}

// dγ = Σ dy·x̂ and dβ = Σ dy over every token row, one thread per feature.
extern "C" __global__ void layer_norm_params(const LayerNormProblem* __restrict__ problems, int rows,
                                             const float* __restrict__ acts,
                                             const float* __restrict__ stats,
                                             const float* __restrict__ deltas, float* grad,
                                             const MemberState* __restrict__ state) {
    const LayerNormProblem p = problems[blockIdx.y];
    if (!state[p.member].alive) return;
    const long long count = (long long)rows * p.tokens;
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < p.dim; c += gridDim.x * blockDim.x) {
        float dgamma = 0.0f, dbeta = 0.0f;
        for (long long r = 0; r < count; ++r) {
            float g = deltas[p.y_off + r * p.dim + c];
            float xhat = (acts[p.x_off + r * p.dim + c] - stats[p.stats_off + r]) * stats[p.stats_off + count + r];
            dgamma += g * xhat;
            dbeta += g;
        }
        grad[p.gamma_off + c] = dgamma;
        grad[p.gamma_off + p.dim + c] = dbeta;
    }
}
