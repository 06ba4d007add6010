// Convolutions (and the dense layers of a layered network, as 1×1 convolutions of a 1×1
// image) of the whole population as implicit GEMMs: one launch per pass and layer index for
// every member that has a convolution or dense layer there, whatever its shape.
// CPU twins: src/backend/cpu/conv.rs (im2col + GEMM) and linear.rs.
//
// Each member's layer is a ConvProblem; blockIdx.z picks it. The operands are never
// materialised: the tile loader reads the input through the im2col index map (zero in the
// padding), so no column buffer of rows·C·k·k·OH·OW floats exists per member (workload C's
// would take 8.3 GB at P = 256 and a batch of 128, written and read again every step).
//
//   conv_forward     y(b, o, q)   = Σ_kk W(kk, o)·col(b, q, kk) + bias(o)
//                    GEMM M = rows·OH·OW, N = O, K = C·k·k + 1 (the bias as a ones column)
//   conv_backward_x  dx(b, c, p)  = Σ_(o,ky,kx) dy(b, o, tap⁻¹(p, ky, kx))·W((c,ky,kx), o)
//                    GEMM M = rows·H·W, N = C, K = O·k·k: each input pixel gathers the
//                    outputs whose window covers it (a gather, so no atomics and a fixed sum)
//   conv_backward_w  dW(kk, o)    = Σ_(b,q) dy(b, o, q)·col(b, q, kk), db(o) = Σ dy(b, o, q)
//                    GEMM M = O, N = C·k·k + 1, K = rows·OH·OW, into the gradient buffer
//
// The weight gradient goes to memory rather than into a fused optimizer (as linear.cu does
// for MLPs): a layered member's gradient also has batch-norm parts, and one optimizer launch
// over every member's trainable range (optim.cu) updates them all.
#include "population.cuh"

struct ConvProblem {
    long long x_off;  // the input block (rows, C, H, W) in the activations (deltas) buffer
    long long y_off;  // the output block (rows, O, OH, OW), likewise
    long long w_off;  // W(kk, o) = params[w_off + kk·w_ks + o·w_os]
    long long b_off;  // bias(o) = params[b_off + o]
    int c, h, w;      // input channels, height, width
    int o, oh, ow;    // output channels, height, width
    int k, stride, pad;
    int w_ks, w_os;   // conv: (1, C·k·k), W stored (O, C·k·k); dense: (O, 1), W stored (C, O)
    int member;
    int tokens;       // rows per sample: a token-wise dense layer's tokens, else 1
};
static_assert(sizeof(ConvProblem) == 88, "ConvProblem layout (src/backend/cuda/layout.rs)");

// 64×64 output tiles, k-slices of 16, 256 threads of 4×4 outputs: the image layers of the
// models popsweep tunes have 1–128 channels, where larger tiles would mostly idle.
#define CONV_THREADS 256
#define BM 64
#define BN 64
#define BK 16

enum ConvPass { FORWARD, BACKWARD_X, BACKWARD_W };

// The input value under tap kk = (c, ky, kx) of output position q of sample b: the implicit
// im2col (CPU twin: conv.rs im2col), 0 in the padding.
__device__ __forceinline__ float im2col(const ConvProblem& p, const float* x, int b, int q, int kk) {
    int taps = p.k * p.k;
    int c = kk / taps, t = kk % taps;
    int oy = q / p.ow, ox = q % p.ow;
    int iy = oy * p.stride + t / p.k - p.pad, ix = ox * p.stride + t % p.k - p.pad;
    if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) return 0.0f;
    return x[p.x_off + (((long long)b * p.c + c) * p.h + iy) * p.w + ix];
}

// The output gradient that reaches input pixel `pix` of sample b through tap (o, ky, kx):
// dy(b, o, oy, ox) where oy·stride + ky − pad is the pixel's row (likewise columns), or 0
// when no output's window puts that tap on the pixel.
__device__ __forceinline__ float tap_gradient(const ConvProblem& p, const float* dy, int b, int pix,
                                              int kk) {
    int taps = p.k * p.k;
    int o = kk / taps, t = kk % taps;
    int ty = pix / p.w + p.pad - t / p.k, tx = pix % p.w + p.pad - t % p.k;
    if (ty < 0 || tx < 0 || ty % p.stride != 0 || tx % p.stride != 0) return 0.0f;
    int oy = ty / p.stride, ox = tx / p.stride;
    if (oy >= p.oh || ox >= p.ow) return 0.0f;
    return dy[p.y_off + (((long long)b * p.o + o) * p.oh + oy) * p.ow + ox];
}

// A token-wise dense layer is a dense layer over rows·tokens rows: every index below counts
// rows of the layer's own (samples, or tokens of samples).
template <ConvPass P>
struct Shape {
    __device__ static int m(const ConvProblem& p, int samples) {
        const int rows = samples * p.tokens;
        return P == FORWARD ? rows * p.oh * p.ow : P == BACKWARD_X ? rows * p.h * p.w : p.o;
    }
    __device__ static int n(const ConvProblem& p) {
        return P == FORWARD ? p.o : P == BACKWARD_X ? p.c : p.c * p.k * p.k + 1;
    }
    __device__ static int k(const ConvProblem& p, int samples) {
        const int rows = samples * p.tokens;
        return P == FORWARD ? p.c * p.k * p.k + 1 : P == BACKWARD_X ? p.o * p.k * p.k : rows * p.oh * p.ow;
    }
};

// A(i, kk) of the pass's GEMM (i < M and kk < K are checked by the caller).
template <ConvPass P>
__device__ __forceinline__ float load_a(const ConvProblem& p, const float* in, int i, int kk) {
    int fan_in = p.c * p.k * p.k, q_per = p.oh * p.ow;
    if (P == FORWARD) return kk == fan_in ? 1.0f : im2col(p, in, i / q_per, i % q_per, kk);
    if (P == BACKWARD_X) return tap_gradient(p, in, i / (p.h * p.w), i % (p.h * p.w), kk);
    // BACKWARD_W: A(o, (b, q)) = dy(b, o, q).
    return in[p.y_off + ((long long)(kk / q_per) * p.o + i) * q_per + kk % q_per];
}

// B(kk, j) of the pass's GEMM.
template <ConvPass P>
__device__ __forceinline__ float load_b(const ConvProblem& p, const float* in, const float* params,
                                        int kk, int j) {
    int fan_in = p.c * p.k * p.k;
    if (P == FORWARD)
        return kk == fan_in ? params[p.b_off + j]
                            : params[p.w_off + (long long)kk * p.w_ks + (long long)j * p.w_os];
    if (P == BACKWARD_X) {
        // kk = (o, t) with t the tap; the weight row of (c = j, t).
        int taps = p.k * p.k, o = kk / taps, t = kk % taps;
        return params[p.w_off + (long long)(j * taps + t) * p.w_ks + (long long)o * p.w_os];
    }
    // BACKWARD_W: B((b, q), j) = col(b, q, j), or 1 in the bias column.
    int q_per = p.oh * p.ow;
    return j == fan_in ? 1.0f : im2col(p, in, kk / q_per, kk % q_per, j);
}

// Where C(i, j) of the pass goes.
template <ConvPass P>
__device__ __forceinline__ long long store_at(const ConvProblem& p, int i, int j) {
    if (P == FORWARD) {
        int q_per = p.oh * p.ow;
        return p.y_off + ((long long)(i / q_per) * p.o + j) * q_per + i % q_per;
    }
    if (P == BACKWARD_X) {
        int plane = p.h * p.w;
        return p.x_off + ((long long)(i / plane) * p.c + j) * plane + i % plane;
    }
    int fan_in = p.c * p.k * p.k;
    return j == fan_in ? p.b_off + i : p.w_off + (long long)j * p.w_ks + (long long)i * p.w_os;
}

// One 64×64 tile of problem blockIdx.z: A from `a_src`, B from `b_src` and `params`, C to
// `out`. Training launches skip diverged members; evaluation (state == nullptr) runs all.
template <ConvPass P>
__device__ void conv_tile(const ConvProblem* __restrict__ problems, int rows, const float* a_src,
                          const float* b_src, const float* __restrict__ params, float* out,
                          const MemberState* __restrict__ state) {
    __shared__ ConvProblem problem;
    if (threadIdx.x == 0) problem = problems[blockIdx.z];
    __syncthreads();
    const ConvProblem& p = problem;
    if (state != nullptr && !state[p.member].alive) return;
    const int M = Shape<P>::m(p, rows), N = Shape<P>::n(p), K = Shape<P>::k(p, rows);
    const int row0 = blockIdx.x * BM, col0 = blockIdx.y * BN;
    if (row0 >= M || col0 >= N) return;

    __shared__ float As[BK][BM];
    __shared__ float Bs[BK][BN + 4];
    const int tid = threadIdx.x, tx = tid % (BN / 4), ty = tid / (BN / 4);
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += BK) {
        // 1024 values of each operand, 4 per thread; consecutive threads take consecutive
        // rows of A (output positions: neighbouring pixels) and columns of B.
#pragma unroll
        for (int r = 0; r < BM * BK / CONV_THREADS; ++r) {
            int e = tid + r * CONV_THREADS;
            int i = e % BM, kk = e / BM;
            bool in = row0 + i < M && k0 + kk < K;
            As[kk][i] = in ? load_a<P>(p, a_src, row0 + i, k0 + kk) : 0.0f;
            int j = e % BN;
            in = k0 + kk < K && col0 + j < N;
            Bs[kk][j] = in ? load_b<P>(p, b_src, params, k0 + kk, col0 + j) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float a[4], b[4];
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                a[u] = As[kk][ty * 4 + u];
                b[u] = Bs[kk][tx * 4 + u];
            }
#pragma unroll
            for (int u = 0; u < 4; ++u)
#pragma unroll
                for (int v = 0; v < 4; ++v) acc[u][v] = fmaf(a[u], b[v], acc[u][v]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int u = 0; u < 4; ++u)
#pragma unroll
        for (int v = 0; v < 4; ++v) {
            int i = row0 + ty * 4 + u, j = col0 + tx * 4 + v;
            if (i < M && j < N) out[store_at<P>(p, i, j)] = acc[u][v];
        }
}

// grid: (M tiles, N tiles, problems) of the largest problem; blocks past a smaller
// problem's extent return at once.
extern "C" __global__ void __launch_bounds__(CONV_THREADS)
conv_forward(const ConvProblem* __restrict__ problems, int rows, const float* acts,
             const float* __restrict__ params, float* out, const MemberState* __restrict__ state) {
    conv_tile<FORWARD>(problems, rows, acts, nullptr, params, out, state);
}

// dy and dx both live in the deltas buffer, in different blocks.
extern "C" __global__ void __launch_bounds__(CONV_THREADS)
conv_backward_x(const ConvProblem* __restrict__ problems, int rows, const float* deltas,
                const float* __restrict__ params, float* dx, const MemberState* __restrict__ state) {
    conv_tile<BACKWARD_X>(problems, rows, deltas, nullptr, params, dx, state);
}

extern "C" __global__ void __launch_bounds__(CONV_THREADS)
conv_backward_w(const ConvProblem* __restrict__ problems, int rows, const float* __restrict__ deltas,
                const float* __restrict__ acts, float* grad, const MemberState* __restrict__ state) {
    conv_tile<BACKWARD_W>(problems, rows, deltas, acts, nullptr, grad, state);
}
