// The transformer's token layers of the whole population, every kind in one launch per
// pass and layer index (a kind per problem): the patch tokens' transpose, position
// embeddings, the class token, the mean over tokens and the first token, and residual
// connections. CPU twins: src/backend/cpu/tokens.rs and the residual steps of
// src/backend/cpu/network/transformer.rs.
//
// Backward passes are gathers (each output gradient element computed by one thread), and
// a parameter's gradient is one thread's sum over the batch: no atomics, a fixed order.
// A residual's backward pass hands its gradient to the branch's output block as it is and
// keeps a copy in the skip buffer; the fork at the branch's start adds that copy to its
// block's gradient once the branch's own backward pass has written it.
#include "population.cuh"

struct TokenProblem {
    long long x_off;      // the input block (residual: the branch's output), in acts/deltas
    long long y_off;      // the output block (position: the block changed in place)
    long long aux_off;    // residual: the block the branch forked from
    long long param_off;  // position embedding or class token in params/grad; residual and
                          // fork: their gradient copy in the skip buffer
    int a, b;             // transpose: rows, cols; class/mean/first token: tokens, dim;
                          // position, residual, fork: the block's width, 0
    int kind;
    int member;
    int has_dx;           // whether the input block's gradient is needed
    int pad;
};
static_assert(sizeof(TokenProblem) == 56, "TokenProblem layout (src/backend/cuda/layout.rs)");

#define TOKEN_TRANSPOSE 0
#define TOKEN_POSITION 1
#define TOKEN_CLASS 2
#define TOKEN_MEAN 3
#define TOKEN_FIRST 4
#define TOKEN_RESIDUAL 5
#define TOKEN_FORK 6

// grid: (chunks, problems); each block strides over its problem's work (the host sizes the
// grid for the largest, src/backend/cuda/tokens.rs).
#define FOR_EACH(total)                                                           \
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < (total); \
         e += (long long)gridDim.x * blockDim.x)

extern "C" __global__ void token_forward(const TokenProblem* __restrict__ problems, int rows,
                                         float* acts, const float* __restrict__ params,
                                         const MemberState* __restrict__ state) {
    const TokenProblem p = problems[blockIdx.y];
    if (state != nullptr && !state[p.member].alive) return;
    const float* x = acts + p.x_off;
    float* y = acts + p.y_off;
    switch (p.kind) {
        case TOKEN_TRANSPOSE: {  // (rows a, cols b) → (b, a) per sample
            const long long size = (long long)p.a * p.b;
            FOR_EACH(rows * size) {
                long long n = e / size, i = e % size, r = i / p.b, c = i % p.b;
                y[n * size + c * p.a + r] = x[e];
            }
            break;
        }
        case TOKEN_POSITION:  // y += embedding, per sample
            FOR_EACH(rows * (long long)p.a) y[e] += params[p.param_off + e % p.a];
            break;
        case TOKEN_CLASS: {  // (tokens, dim) → (tokens + 1, dim), the class token first
            const long long size = (long long)(p.a + 1) * p.b;
            FOR_EACH(rows * size) {
                long long n = e / size, i = e % size;
                y[e] = i < p.b ? params[p.param_off + i] : x[n * (size - p.b) + i - p.b];
            }
            break;
        }
        case TOKEN_MEAN:  // (tokens, dim) → (dim)
            FOR_EACH(rows * (long long)p.b) {
                long long n = e / p.b, d = e % p.b;
                float sum = 0.0f;
                for (int t = 0; t < p.a; ++t) sum += x[(n * p.a + t) * p.b + d];
                y[e] = sum * (1.0f / (float)p.a);
            }
            break;
        case TOKEN_FIRST:  // (tokens, dim) → (dim)
            FOR_EACH(rows * (long long)p.b) y[e] = x[(e / p.b) * p.a * p.b + e % p.b];
            break;
        case TOKEN_RESIDUAL:
            FOR_EACH(rows * (long long)p.a) y[e] = x[e] + acts[p.aux_off + e];
            break;
        default:  // TOKEN_FORK: nothing until the backward pass
            break;
    }
}

extern "C" __global__ void token_backward(const TokenProblem* __restrict__ problems, int rows,
                                          float* deltas, float* grad, float* skips,
                                          const MemberState* __restrict__ state) {
    const TokenProblem p = problems[blockIdx.y];
    if (!state[p.member].alive) return;
    float* dx = deltas + p.x_off;
    const float* dy = deltas + p.y_off;
    switch (p.kind) {
        case TOKEN_TRANSPOSE: {
            if (!p.has_dx) break;
            const long long size = (long long)p.a * p.b;
            FOR_EACH(rows * size) {
                long long n = e / size, i = e % size, r = i / p.b, c = i % p.b;
                dx[e] = dy[n * size + c * p.a + r];
            }
            break;
        }
        case TOKEN_POSITION:  // the embedding's gradient: the sum over the batch
            FOR_EACH((long long)p.a) {
                float sum = 0.0f;
                for (int n = 0; n < rows; ++n) sum += dy[(long long)n * p.a + e];
                grad[p.param_off + e] = sum;
            }
            break;
        case TOKEN_CLASS: {
            const long long size = (long long)(p.a + 1) * p.b;
            FOR_EACH((long long)p.b) {
                float sum = 0.0f;
                for (int n = 0; n < rows; ++n) sum += dy[n * size + e];
                grad[p.param_off + e] = sum;
            }
            if (!p.has_dx) break;
            const long long in = size - p.b;
            FOR_EACH(rows * in) dx[e] = dy[(e / in) * size + p.b + e % in];
            break;
        }
        case TOKEN_MEAN: {
            if (!p.has_dx) break;
            const long long size = (long long)p.a * p.b;
            FOR_EACH(rows * size) dx[e] = dy[(e / size) * p.b + e % p.b] * (1.0f / (float)p.a);
            break;
        }
        case TOKEN_FIRST: {
            if (!p.has_dx) break;
            const long long size = (long long)p.a * p.b;
            FOR_EACH(rows * size) {
                long long i = e % size;
                dx[e] = i < p.b ? dy[(e / size) * p.b + i] : 0.0f;
            }
            break;
        }
        case TOKEN_RESIDUAL:
            FOR_EACH(rows * (long long)p.a) {
                float g = dy[e];
                dx[e] = g;
                skips[p.param_off + e] = g;
            }
            break;
        default:  // TOKEN_FORK
            FOR_EACH(rows * (long long)p.a) dx[e] += skips[p.param_off + e];
            break;
    }
}
