// Fully connected layers of the whole population as one grouped GEMM per launch, with the
// layer's elementwise work fused into the epilogue. CPU twins: src/backend/cpu/linear.rs,
// activation.rs, dropout.rs and optim.rs.
//
// Every member's layer is one problem C = A·B (shapes m×k, k×n) described by a GemmProblem;
// blockIdx.z picks the problem, so ragged widths and depths share a launch and the launch
// count per step does not depend on the population size. Operands are addressed by strides
// (a transpose is a stride swap, never a copy). Biases ride along as an extra row of the
// weight matrix, which the layout [W_l (in×out) | b_l (out)] stores contiguously: the forward
// pass multiplies [X | 1]·[W; b], and the weight gradient [X | 1]ᵀ·dY writes dW and db in one
// pass. The ones are produced by the tile loader (flags ONES_K / ONES_M), never stored.
//
// Three epilogues:
//   linear_forward    y = act(x·W + b), then the dropout mask (hidden layers)
//   linear_backward_x dx = (dy·Wᵀ) ⊙ [a_prev > 0]·scale: the previous layer's ReLU and dropout
//                     backward, from its stored output a_prev (positive exactly where both
//                     ReLU and dropout let the element through)
//   linear_backward_w g = [x | 1]ᵀ·dy, applied at once by the member's optimizer: the weight
//                     gradient never touches memory, and each parameter, moment and second
//                     moment is read and written once per step.
#include "activation.cuh"
#include "dropout.cuh"
#include "optim.cuh"

struct GemmProblem {
    long long a_off, b_off, c_off, aux_off;  // element offsets into the launch's buffers
    int m, n, k;
    int a_rs, a_cs;  // A(i, kk) = A[a_off + i*a_rs + kk*a_cs]
    int b_rs, b_cs;  // B(kk, j) = B[b_off + kk*b_rs + j*b_cs]
    int ldc;         // C(i, j) = C[c_off + i*ldc + j]
    int member;
    int layer;
    int flags;
    int pad;
};

static_assert(sizeof(GemmProblem) == 80, "GemmProblem layout (src/backend/cuda/layout.rs)");

#define ONES_K 1  // A(i, k-1) = 1: the forward pass's bias column
#define ONES_M 2  // A(m-1, kk) = 1: the weight gradient's bias row
#define RELU 4    // hidden layer: ReLU and dropout in the forward epilogue

// Two tile shapes, both 256 threads: 64×64 (4×4 outputs per thread) for narrow layers and
// 128×128 (8×8 per thread: twice the multiply-adds per shared-memory load) for wide ones.
// The host picks one per launch from the largest problem (src/backend/cuda/linear.rs).
#define THREADS 256

// How a 128 tile multiplies: fp32 FMAs with each thread's 8×8 outputs blocked or split
// (below), or — opt in, POPSWEEP_GEMM=tf32 — TF32 tensor cores (mma.sync m16n8k8: inputs
// rounded to 10 mantissa bits, products accumulated in fp32, as PyTorch does with
// allow_tf32). fp32 is the default because it is what the CPU twin computes.
enum Mode { BLOCKED, SPLIT_LAYOUT, TF32 };

enum Epilogue { FORWARD, BACKWARD_X, BACKWARD_W };

__device__ __forceinline__ float load_a(const GemmProblem& p, const float* A, int i, int kk) {
    if (i >= p.m || kk >= p.k) return 0.0f;
    if (((p.flags & ONES_K) && kk == p.k - 1) || ((p.flags & ONES_M) && i == p.m - 1)) return 1.0f;
    return A[p.a_off + (long long)i * p.a_rs + (long long)kk * p.a_cs];
}

__device__ __forceinline__ float load_b(const GemmProblem& p, const float* B, int kk, int j) {
    if (kk >= p.k || j >= p.n) return 0.0f;
    return B[p.b_off + (long long)kk * p.b_rs + (long long)j * p.b_cs];
}

// Stages one BK-slice of A (BM×BK) and B (BK×BN) through registers. Consecutive threads walk
// each operand's contiguous dimension, so the global loads coalesce whichever way the
// operand is laid out.
template <int BM, int BN, int BK, int PAD>
struct TileLoader {
    static constexpr int LA = BM * BK / THREADS, LB = BK * BN / THREADS;
    float ra[LA], rb[LB];

    __device__ __forceinline__ void load(const GemmProblem& p, const float* A, const float* B,
                                         int row0, int col0, int k0) {
        int tid = threadIdx.x;
#pragma unroll
        for (int r = 0; r < LA; ++r) {
            int i, kk;
            if (p.a_cs == 1) { kk = tid % BK; i = tid / BK + r * (THREADS / BK); }
            else { i = tid % BM; kk = tid / BM + r * (THREADS / BM); }
            ra[r] = load_a(p, A, row0 + i, k0 + kk);
        }
#pragma unroll
        for (int r = 0; r < LB; ++r) {
            int kk, j;
            if (p.b_cs == 1) { j = tid % BN; kk = tid / BN + r * (THREADS / BN); }
            else { kk = tid % BK; j = tid / BK + r * (THREADS / BK); }
            rb[r] = load_b(p, B, k0 + kk, col0 + j);
        }
    }

    __device__ __forceinline__ void store(const GemmProblem& p, float (*As)[BM + PAD],
                                          float (*Bs)[BN + PAD]) {
        int tid = threadIdx.x;
#pragma unroll
        for (int r = 0; r < LA; ++r) {
            int i, kk;
            if (p.a_cs == 1) { kk = tid % BK; i = tid / BK + r * (THREADS / BK); }
            else { i = tid % BM; kk = tid / BM + r * (THREADS / BM); }
            As[kk][i] = ra[r];
        }
#pragma unroll
        for (int r = 0; r < LB; ++r) {
            int kk, j;
            if (p.b_cs == 1) { j = tid % BN; kk = tid / BN + r * (THREADS / BN); }
            else { kk = tid % BK; j = tid / BK + r * (THREADS / BK); }
            Bs[kk][j] = rb[r];
        }
    }
};

// Where the i-th of a thread's T outputs along a tile edge of EDGE lies. Blocked: T
// consecutive rows (columns). Split: strips of 4, EDGE/T·4 apart, so that in the inner loop
// neighbouring threads read neighbouring 16-byte words of shared memory instead of words
// T·4 bytes apart (which costs extra shared-memory wavefronts when T = 8).
template <bool SPLIT, int EDGE, int T>
__device__ __forceinline__ int out_index(int thread, int i) {
    return SPLIT ? (i / 4) * (EDGE / T * 4) + thread * 4 + (i % 4) : thread * T + i;
}

// acc += the BK-slice in shared memory, TM×TN outputs per thread.
template <bool SPLIT, int BM, int BN, int BK, int TM, int TN>
__device__ __forceinline__ void multiply_slice(const float (*As)[BM + 4], const float (*Bs)[BN + 4],
                                               int tx, int ty, float (&acc)[TM][TN]) {
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
        float av[TM], bv[TN];
#pragma unroll
        for (int q = 0; q < TM; q += 4) {
            float4 a = *reinterpret_cast<const float4*>(&As[kk][out_index<SPLIT, BM, TM>(ty, q)]);
            av[q] = a.x, av[q + 1] = a.y, av[q + 2] = a.z, av[q + 3] = a.w;
        }
#pragma unroll
        for (int q = 0; q < TN; q += 4) {
            float4 b = *reinterpret_cast<const float4*>(&Bs[kk][out_index<SPLIT, BN, TN>(tx, q)]);
            bv[q] = b.x, bv[q + 1] = b.y, bv[q + 2] = b.z, bv[q + 3] = b.w;
        }
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
}

__device__ __forceinline__ unsigned to_tf32(float x) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

// TF32: the 8 warps as 2 (rows) × 4 (columns), each a 64×32 sub-tile of 4×4 m16n8 tiles;
// the k-slice of 8 is one mma per tile. Fragment layouts as in the PTX ISA for
// m16n8k8.tf32 (g = lane / 4, t = lane % 4): A (g, t), (g+8, t), (g, t+4), (g+8, t+4);
// B (t, g), (t+4, g); C (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1). Tile (mi, ni)'s four
// accumulators live in acc[2·mi + ni/2][4·(ni%2) + q]. Rows padded to BM+8 floats keep
// the 32 lanes' fragment reads (rows t, t+4; 8 consecutive columns) on 32 banks.
template <int BM, int BN>
__device__ __forceinline__ void multiply_slice_tf32(const float (*As)[BM + 8], const float (*Bs)[BN + 8],
                                                    float (&acc)[8][8]) {
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int g = lane >> 2, t = lane & 3;
    int wm = (warp / 4) * 64, wn = (warp % 4) * 32;
    unsigned a[4][4], b[4][2];
#pragma unroll
    for (int mi = 0; mi < 4; ++mi) {
        int r = wm + mi * 16 + g;
        a[mi][0] = to_tf32(As[t][r]);
        a[mi][1] = to_tf32(As[t][r + 8]);
        a[mi][2] = to_tf32(As[t + 4][r]);
        a[mi][3] = to_tf32(As[t + 4][r + 8]);
    }
#pragma unroll
    for (int ni = 0; ni < 4; ++ni) {
        int c = wn + ni * 8 + g;
        b[ni][0] = to_tf32(Bs[t][c]);
        b[ni][1] = to_tf32(Bs[t + 4][c]);
    }
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
            float* d = &acc[2 * mi + ni / 2][4 * (ni % 2)];
            asm volatile(
                "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, "
                "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                : "r"(a[mi][0]), "r"(a[mi][1]), "r"(a[mi][2]), "r"(a[mi][3]), "r"(b[ni][0]),
                  "r"(b[ni][1]));
        }
}

// The main loop is pipelined: two shared-memory stages; the next slice's global loads are
// issued before the current slice's arithmetic and land in the other stage, so memory
// latency hides behind the multiply-adds and each slice needs one barrier, not two (8%
// faster per training step than load-barrier-multiply-barrier on an H100; docs/gpu-performance.md).
template <Epilogue E, Mode MODE, int BM, int BN, int BK, int TM, int TN>
__device__ void gemm_tile(const GemmProblem& p, const float* __restrict__ A,
                          const float* __restrict__ B, float* C, const float* __restrict__ aux,
                          float* m1, float* m2, const MemberHparams* __restrict__ hp,
                          const MemberState* __restrict__ state) {
    constexpr bool SPLIT = MODE == SPLIT_LAYOUT;
    constexpr int PAD = MODE == TF32 ? 8 : 4;
    static_assert(MODE != TF32 || (BM == 128 && BN == 128 && BK == 8 && TM == 8 && TN == 8),
                  "the TF32 path is written for 128×128 tiles, k-slices of 8, 256 threads");
    int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN;
    if (row0 >= p.m || col0 >= p.n) return;
    __shared__ __align__(16) float As[2][BK][BM + PAD];
    __shared__ __align__(16) float Bs[2][BK][BN + PAD];
    int tid = threadIdx.x, tx = tid % (BN / TN), ty = tid / (BN / TN);
    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    TileLoader<BM, BN, BK, PAD> loader;
    loader.load(p, A, B, row0, col0, 0);
    loader.store(p, As[0], Bs[0]);
    __syncthreads();
    int stage = 0;
    for (int k0 = 0; k0 < p.k; k0 += BK) {
        bool more = k0 + BK < p.k;
        if (more) loader.load(p, A, B, row0, col0, k0 + BK);
        if constexpr (MODE == TF32) {
            multiply_slice_tf32<BM, BN>(As[stage], Bs[stage], acc);
        } else {
            multiply_slice<SPLIT, BM, BN, BK, TM, TN>(As[stage], Bs[stage], tx, ty, acc);
        }
        // The other stage was last read before the previous iteration's barrier.
        if (more) loader.store(p, As[stage ^ 1], Bs[stage ^ 1]);
        __syncthreads();
        stage ^= 1;
    }

    // The epilogue goes through shared memory EPI_ROWS rows at a time, so that consecutive
    // threads handle consecutive columns: every global load and store it makes (above all
    // the weight-gradient pass's parameters and both moments) is a full coalesced line
    // rather than one word per 32-byte sector.
    constexpr int EPI_ROWS = 32;
    __shared__ float Cs[EPI_ROWS][BN + 1];
    // The member's hyperparameters and state are read only now, so they hold no registers
    // during the main loop. Evaluation (state == nullptr): no dropout.
    const MemberHparams h = *hp;
    const float rate = state != nullptr ? h.dropout : 0.0f;
    const unsigned long long step = state != nullptr ? state->steps : 0;
    const float keep_scale = 1.0f / (1.0f - rate);
    for (int chunk = 0; chunk < BM; chunk += EPI_ROWS) {
        if constexpr (MODE == TF32) {
            int warp = tid / 32, lane = tid % 32, g = lane >> 2, t = lane & 3;
            int wm = (warp / 4) * 64, wn = (warp % 4) * 32;
#pragma unroll
            for (int mi = 0; mi < 4; ++mi)
#pragma unroll
                for (int ni = 0; ni < 4; ++ni)
#pragma unroll
                    for (int q = 0; q < 4; ++q) {
                        int lr = wm + mi * 16 + g + (q >= 2 ? 8 : 0) - chunk;
                        int c = wn + ni * 8 + 2 * t + (q & 1);
                        if (lr >= 0 && lr < EPI_ROWS) Cs[lr][c] = acc[2 * mi + ni / 2][4 * (ni % 2) + q];
                    }
        } else {
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                int lr = out_index<SPLIT, BM, TM>(ty, i) - chunk;
                if (lr >= 0 && lr < EPI_ROWS) {
#pragma unroll
                    for (int j = 0; j < TN; ++j) Cs[lr][out_index<SPLIT, BN, TN>(tx, j)] = acc[i][j];
                }
            }
        }
        __syncthreads();
        if constexpr (E == BACKWARD_W) {
            // The optimizer's traffic (w, m, v read and written) dominates this pass. Each
            // thread loads U parameters' state before updating any, so U times as many
            // loads are in flight: one at a time left HBM latency-bound at ~0.9 TB/s.
            constexpr int U = 4;
            static_assert(EPI_ROWS * BN % (THREADS * U) == 0, "whole rounds of U per thread");
            const bool adam = h.kind != 0;
            for (int e0 = tid; e0 < EPI_ROWS * BN; e0 += THREADS * U) {
                float w[U], m[U], v[U], g[U];
                long long at[U];
                bool in[U];
#pragma unroll
                for (int u = 0; u < U; ++u) {
                    int e = e0 + u * THREADS;
                    int r = row0 + chunk + e / BN, c = col0 + e % BN;
                    in[u] = r < p.m && c < p.n;
                    at[u] = p.c_off + (long long)r * p.ldc + c;
                    g[u] = Cs[e / BN][e % BN];
                    w[u] = in[u] ? C[at[u]] : 0.0f;
                    m[u] = in[u] ? m1[at[u]] : 0.0f;
                    v[u] = in[u] && adam ? m2[at[u]] : 0.0f;
                }
#pragma unroll
                for (int u = 0; u < U; ++u) {
                    if (!in[u]) continue;
                    optimizer_values(h, *state, w[u], g[u], m[u], v[u]);
                    C[at[u]] = w[u];
                    m1[at[u]] = m[u];
                    if (adam) m2[at[u]] = v[u];
                }
            }
            __syncthreads();
            continue;
        }
        for (int e = tid; e < EPI_ROWS * BN; e += THREADS) {
            int r = row0 + chunk + e / BN, c = col0 + e % BN;
            if (r >= p.m || c >= p.n) continue;
            long long at = p.c_off + (long long)r * p.ldc + c;
            float v = Cs[e / BN][e % BN];
            if (E == FORWARD) {
                if (p.flags & RELU) {
                    v = relu(v);
                    if (rate > 0.0f)
                        v *= dropout_scale(h.seed, step, p.layer, (unsigned long long)r * p.n + c,
                                           rate);
                }
                C[at] = v;
            } else {
                float a_prev = aux[p.aux_off + (long long)r * p.ldc + c];
                C[at] = a_prev > 0.0f ? v * keep_scale : 0.0f;
            }
        }
        __syncthreads();
    }
}

// The block's problem goes to shared memory (not 20 registers per thread). Training
// launches skip diverged members; evaluation (state == nullptr) runs them all.
#define MEMBER_PROLOGUE                                                   \
    __shared__ GemmProblem problem;                                       \
    if (threadIdx.x == 0) problem = problems[blockIdx.z];                 \
    __syncthreads();                                                      \
    const GemmProblem& p = problem;                                       \
    const MemberHparams* h = hp + p.member;                               \
    const MemberState* s = state != nullptr ? state + p.member : nullptr; \
    if (s != nullptr && !s->alive) return;

// One entry point per pass, tile shape and output layout: linear_forward_64,
// linear_forward_128, linear_forward_128s (split), ...
#define ENTRY_POINTS(NAME, MODE, TILE, BK, T, MIN_BLOCKS)                                         \
    extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS) linear_forward_##NAME(      \
        const GemmProblem* __restrict__ problems, const float* __restrict__ x,                    \
        const float* __restrict__ params, float* y, const MemberHparams* __restrict__ hp,         \
        const MemberState* __restrict__ state) {                                                  \
        MEMBER_PROLOGUE                                                                           \
        gemm_tile<FORWARD, MODE, TILE, TILE, BK, T, T>(p, x, params, y, nullptr, nullptr, nullptr, \
                                                       h, s);                                     \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS) linear_backward_x_##NAME(   \
        const GemmProblem* __restrict__ problems, const float* __restrict__ dy,                   \
        const float* __restrict__ params, float* dx, const float* __restrict__ acts,              \
        const MemberHparams* __restrict__ hp, const MemberState* __restrict__ state) {            \
        MEMBER_PROLOGUE                                                                           \
        gemm_tile<BACKWARD_X, MODE, TILE, TILE, BK, T, T>(p, dy, params, dx, acts, nullptr,       \
                                                          nullptr, h, s);                         \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS) linear_backward_w_##NAME(   \
        const GemmProblem* __restrict__ problems, const float* __restrict__ x,                    \
        const float* __restrict__ dy, float* params, float* m1, float* m2,                        \
        const MemberHparams* __restrict__ hp, const MemberState* __restrict__ state) {            \
        MEMBER_PROLOGUE                                                                           \
        gemm_tile<BACKWARD_W, MODE, TILE, TILE, BK, T, T>(p, x, dy, params, nullptr, m1, m2, h,   \
                                                          s);                                     \
    }

// Two 128-tile blocks per multiprocessor (registers capped at 128) so one block's loads
// overlap the other's arithmetic.
// (With 4 outputs per thread the split layout is the blocked one: no 64s.)
ENTRY_POINTS(64, BLOCKED, 64, 16, 4, 1)
ENTRY_POINTS(128, BLOCKED, 128, 8, 8, 2)
ENTRY_POINTS(128s, SPLIT_LAYOUT, 128, 8, 8, 2)
ENTRY_POINTS(128t, TF32, 128, 8, 8, 2)
