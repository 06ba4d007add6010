// Multi-head self-attention of the whole population: scaled dot products, softmax, dropout
// on the attention weights and the weighted sum of values, forward and backward fused per
// (sample, head), with the T×T scores in shared memory (T ≤ ATTENTION_MAX_TOKENS: the
// short sequences of small vision transformers). CPU twin: src/backend/cpu/attention.rs.
//
// Rows of the input block are a token's packed [q | k | v] (3·dim), of the output its
// heads' values side by side (dim). The softmax weights P (before dropout) are kept for
// the backward pass; the dropout mask is drawn again there from the counter-based stream.
//   forward   S = q·kᵀ/√dh, P = softmax(S) per row, O = (P ⊙ M)·v
//   backward  dv = (P ⊙ M)ᵀ·dO, dP = (dO·vᵀ) ⊙ M, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
//             dq = dS·k/√dh, dk = dSᵀ·q/√dh
#include "dropout.cuh"
#include "population.cuh"

struct AttentionProblem {
    long long x_off;  // the packed q, k, v block (rows, tokens, 3·dim) in acts/deltas
    long long y_off;  // the output block (rows, tokens, dim)
    long long p_off;  // the softmax weights (rows, heads, tokens, tokens) in the weights buffer
    int tokens, dim, heads;
    int member;
    int layer;        // the attention dropout mask's key: the output block's index
    int pad;
};
static_assert(sizeof(AttentionProblem) == 48, "AttentionProblem layout (src/backend/cuda/layout.rs)");

#define ATTENTION_THREADS 256
#define ATTENTION_MAX_TOKENS 65
#define STREAM_ATTENTION_DROPOUT 6u

// The (sample, head) of this block, or false when the block is past its problem's heads.
__device__ __forceinline__ bool sample_head(const AttentionProblem& p, int rows, int& n, int& head) {
    n = blockIdx.x / p.heads;
    head = blockIdx.x % p.heads;
    return blockIdx.x < (unsigned)(rows * p.heads);
}

// The attention-dropout scale of weight (i, j) of (n, head) at `step` (1 without dropout).
__device__ __forceinline__ float weight_scale(const AttentionProblem& p, const MemberHparams& h,
                                              unsigned long long step, int n, int head, int i, int j) {
    if (!(h.attn_dropout > 0.0f)) return 1.0f;
    long long e = (((long long)n * p.heads + head) * p.tokens + i) * p.tokens + j;
    return stream_dropout_scale(h.seed, STREAM_ATTENTION_DROPOUT, step, p.layer, e, h.attn_dropout);
}

// grid: (rows·heads of the largest, problems). `training`: dropout at the member's step.
extern "C" __global__ void __launch_bounds__(ATTENTION_THREADS)
attention_forward(const AttentionProblem* __restrict__ problems, int rows, float* acts,
                  float* weights, const MemberHparams* __restrict__ hp,
                  const MemberState* __restrict__ state) {
    __shared__ float P[ATTENTION_MAX_TOKENS * ATTENTION_MAX_TOKENS];
    const AttentionProblem p = problems[blockIdx.y];
    int n, head;
    if (!sample_head(p, rows, n, head)) return;
    if (state != nullptr && !state[p.member].alive) return;
    const int t = p.tokens, d = p.dim, dh = d / p.heads;
    const float scale = 1.0f / sqrtf((float)dh);
    const float* x = acts + p.x_off + (long long)n * t * 3 * d;
    const float* q = x + head * dh;
    const float* k = x + d + head * dh;
    const float* v = x + 2 * d + head * dh;
    for (int e = threadIdx.x; e < t * t; e += ATTENTION_THREADS) {
        int i = e / t, j = e % t;
        float s = 0.0f;
        for (int c = 0; c < dh; ++c) s += q[i * 3 * d + c] * k[j * 3 * d + c];
        P[e] = s * scale;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < t; i += ATTENTION_THREADS) {
        float* row = P + i * t;
        float mx = -INFINITY, sum = 0.0f;
        for (int j = 0; j < t; ++j) mx = fmaxf(mx, row[j]);
        for (int j = 0; j < t; ++j) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        for (int j = 0; j < t; ++j) row[j] = row[j] / sum;
    }
    __syncthreads();
    float* saved = weights + p.p_off + ((long long)n * p.heads + head) * t * t;
    const MemberHparams h = hp[p.member];
    const bool drop = state != nullptr && h.attn_dropout > 0.0f;
    const unsigned long long step = state != nullptr ? state[p.member].steps : 0;
    // P is kept before dropout; the weights the values are summed with are P ⊙ M.
    for (int e = threadIdx.x; e < t * t; e += ATTENTION_THREADS) {
        saved[e] = P[e];
        if (drop) P[e] *= weight_scale(p, h, step, n, head, e / t, e % t);
    }
    __syncthreads();
    float* out = acts + p.y_off + (long long)n * t * d + head * dh;
    for (int e = threadIdx.x; e < t * dh; e += ATTENTION_THREADS) {
        int i = e / dh, c = e % dh;
        float o = 0.0f;
        for (int j = 0; j < t; ++j) o += P[i * t + j] * v[j * 3 * d + c];
        out[i * d + c] = o;
    }
}

// The packed q, k, v gradient of every (sample, head) from the output's, in deltas.
extern "C" __global__ void __launch_bounds__(ATTENTION_THREADS)
attention_backward(const AttentionProblem* __restrict__ problems, int rows,
                   const float* __restrict__ acts, const float* __restrict__ weights, float* deltas,
                   const MemberHparams* __restrict__ hp, const MemberState* __restrict__ state) {
    __shared__ float P[ATTENTION_MAX_TOKENS * ATTENTION_MAX_TOKENS];
    __shared__ float dS[ATTENTION_MAX_TOKENS * ATTENTION_MAX_TOKENS];
    // Whether each weight was kept, drawn once (the same words the forward pass drew); a
    // byte each, as three float arrays would pass the 48 KB of static shared memory.
    __shared__ unsigned char kept[ATTENTION_MAX_TOKENS * ATTENTION_MAX_TOKENS];
    const AttentionProblem p = problems[blockIdx.y];
    int n, head;
    if (!sample_head(p, rows, n, head)) return;
    if (!state[p.member].alive) return;
    const int t = p.tokens, d = p.dim, dh = d / p.heads;
    const float scale = 1.0f / sqrtf((float)dh);
    const MemberHparams h = hp[p.member];
    // After the loss kernel advanced the step: the forward pass drew with steps − 1.
    const unsigned long long step = state[p.member].steps - 1;
    const float keep_scale = h.attn_dropout > 0.0f ? 1.0f / (1.0f - h.attn_dropout) : 1.0f;
    const float* x = acts + p.x_off + (long long)n * t * 3 * d;
    const float* q = x + head * dh;
    const float* k = x + d + head * dh;
    const float* v = x + 2 * d + head * dh;
    const float* dO = deltas + p.y_off + (long long)n * t * d + head * dh;
    float* dx = deltas + p.x_off + (long long)n * t * 3 * d;
    const float* saved = weights + p.p_off + ((long long)n * p.heads + head) * t * t;
    for (int e = threadIdx.x; e < t * t; e += ATTENTION_THREADS) {
        int i = e / t, j = e % t;
        float m = weight_scale(p, h, step, n, head, i, j);
        kept[e] = m != 0.0f;
        P[e] = saved[e];
        // dP ⊙ M, with dP = dO·vᵀ.
        float g = 0.0f;
        for (int c = 0; c < dh; ++c) g += dO[i * d + c] * v[j * 3 * d + c];
        dS[e] = g * m;
    }
    __syncthreads();
    // dv = (P ⊙ M)ᵀ·dO, before dS is rewritten (it reads only P and the mask).
    for (int e = threadIdx.x; e < t * dh; e += ATTENTION_THREADS) {
        int j = e / dh, c = e % dh;
        float g = 0.0f;
        for (int i = 0; i < t; ++i) {
            float w = kept[i * t + j] ? P[i * t + j] * keep_scale : 0.0f;
            g += w * dO[i * d + c];
        }
        dx[j * 3 * d + 2 * d + head * dh + c] = g;
    }
    for (int i = threadIdx.x; i < t; i += ATTENTION_THREADS) {
        float dot = 0.0f;
        for (int j = 0; j < t; ++j) dot += dS[i * t + j] * P[i * t + j];
        for (int j = 0; j < t; ++j) dS[i * t + j] = P[i * t + j] * (dS[i * t + j] - dot);
    }
    __syncthreads();
    for (int e = threadIdx.x; e < t * dh; e += ATTENTION_THREADS) {
        int i = e / dh, c = e % dh;
        float gq = 0.0f, gk = 0.0f;
        for (int j = 0; j < t; ++j) {
            gq += dS[i * t + j] * k[j * 3 * d + c];
            gk += dS[j * t + i] * q[j * 3 * d + c];
        }
        dx[i * 3 * d + head * dh + c] = gq * scale;
        dx[i * 3 * d + d + head * dh + c] = gk * scale;
    }
}
