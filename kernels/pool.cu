// Max, average and global-average pooling of the whole population, one launch per pass and
// layer index. CPU twin: src/backend/cpu/pool.rs (size×size windows at stride size, floor
// mode: rows and columns that fill no window are dropped).
//
// Max pooling keeps, per output, the index within the sample of the value it took; on ties
// the first in row-major order wins (the same comparisons in the same order as the CPU, so
// NaN behaves alike too: a NaN already taken is never replaced, and never replaces). The
// backward passes are gathers — each input element finds the one window that holds it — so
// no atomics are needed and every sum has a fixed order.
#include "population.cuh"

struct PoolProblem {
    long long x_off;      // input block (rows, C, H, W)
    long long y_off;      // output block (rows, C, OH, OW), or (rows, C) for global pooling
    long long picks_off;  // max pooling: the arg-max indices, one per output
    int channels, size, height, width;
    int kind;             // POOL_MAX, POOL_AVG or POOL_GLOBAL
    int member;
};
static_assert(sizeof(PoolProblem) == 48, "PoolProblem layout (src/backend/cuda/layout.rs)");

#define POOL_MAX 0
#define POOL_AVG 1
#define POOL_GLOBAL 2

__device__ __forceinline__ int pool_outputs(const PoolProblem& p) {
    if (p.kind == POOL_GLOBAL) return p.channels;
    return p.channels * (p.height / p.size) * (p.width / p.size);
}

// grid: (chunks, problems); each block strides over its problem's rows·outputs.
extern "C" __global__ void pool_forward(const PoolProblem* __restrict__ problems, int rows,
                                        float* acts, unsigned int* __restrict__ picks,
                                        const MemberState* __restrict__ state) {
    const PoolProblem p = problems[blockIdx.y];
    if (state != nullptr && !state[p.member].alive) return;
    const int n_out = pool_outputs(p), plane = p.height * p.width, n_in = p.channels * plane;
    const int oh = p.height / p.size, ow = p.width / p.size;
    const long long total = (long long)rows * n_out;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        int b = (int)(e / n_out), o = (int)(e % n_out);
        const float* xs = acts + p.x_off + (long long)b * n_in;
        float v;
        if (p.kind == POOL_GLOBAL) {
            float sum = 0.0f;
            for (int i = 0; i < plane; ++i) sum += xs[o * plane + i];
            v = sum * (1.0f / (float)plane);
        } else {
            int c = o / (oh * ow), oy = (o / ow) % oh, ox = o % ow;
            int first = (c * p.height + oy * p.size) * p.width + ox * p.size;
            if (p.kind == POOL_MAX) {
                int best = first;
                for (int dy = 0; dy < p.size; ++dy)
                    for (int i = first + dy * p.width; i < first + dy * p.width + p.size; ++i)
                        if (xs[i] > xs[best]) best = i;
                v = xs[best];
                picks[p.picks_off + e] = (unsigned int)best;
            } else {
                float sum = 0.0f;
                for (int dy = 0; dy < p.size; ++dy) {
                    float row = 0.0f;
                    for (int dx = 0; dx < p.size; ++dx) row += xs[first + dy * p.width + dx];
                    sum += row;
                }
                v = sum * (1.0f / (float)(p.size * p.size));
            }
        }
        acts[p.y_off + e] = v;
    }
}

// dx of every input element from dy (both in the deltas buffer): the gradient of the output
// whose window holds it — max pooling only where that output picked it — and 0 in the
// dropped edge rows and columns.
extern "C" __global__ void pool_backward(const PoolProblem* __restrict__ problems, int rows,
                                         float* deltas, const unsigned int* __restrict__ picks,
                                         const MemberState* __restrict__ state) {
    const PoolProblem p = problems[blockIdx.y];
    if (state != nullptr && !state[p.member].alive) return;
    const int n_out = pool_outputs(p), plane = p.height * p.width, n_in = p.channels * plane;
    const int oh = p.height / p.size, ow = p.width / p.size;
    const long long total = (long long)rows * n_in;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        int b = (int)(e / n_in), i = (int)(e % n_in);
        int c = i / plane, y = (i % plane) / p.width, x = i % p.width;
        const long long out0 = p.y_off + (long long)b * n_out;
        float g = 0.0f;
        if (p.kind == POOL_GLOBAL) {
            g = deltas[out0 + c] * (1.0f / (float)plane);
        } else if (y / p.size < oh && x / p.size < ow) {
            int o = (c * oh + y / p.size) * ow + x / p.size;
            if (p.kind == POOL_AVG) {
                g = deltas[out0 + o] * (1.0f / (float)(p.size * p.size));
            } else if (picks[p.picks_off + (long long)b * n_out + o] == (unsigned int)i) {
                g = deltas[out0 + o];
            }
        }
        deltas[p.x_off + e] = g;
    }
}
