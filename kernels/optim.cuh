// The optimizer update of one parameter, the CPU twin's arithmetic
// (src/backend/cpu/optim.rs, PyTorch's SGD and AdamW). Used by the weight-gradient
// epilogue in linear.cu (the gradient never goes to memory) and by optim.cu.
#pragma once
#include "population.cuh"

// On values held in registers, so a caller can issue the loads of several parameters
// before the first update (memory-level parallelism; see linear.cu's epilogue). `v` is
// AdamW's second moment, untouched by SGD.
__device__ __forceinline__ void optimizer_values(const MemberHparams& h, const MemberState& s,
                                                 float& w, float g, float& m, float& v) {
    if (h.kind == 0) {
        g = g + h.weight_decay * w;
        m = h.momentum * m + g;
        w = w - h.lr * m;
    } else {
        w = w * (1.0f - h.lr * h.weight_decay);
        m = h.beta1 * m + (1.0f - h.beta1) * g;
        v = h.beta2 * v + (1.0f - h.beta2) * g * g;
        w = w - s.step_size * m / (sqrtf(v) / s.sqrt_bias2 + h.eps);
    }
}

__device__ __forceinline__ void optimizer_update(const MemberHparams& h, const MemberState& s,
                                                 float* w, float g, float* m, float* v) {
    float wv = *w, mv = *m, vv = h.kind == 0 ? 0.0f : *v;
    optimizer_values(h, s, wv, g, mv, vv);
    *w = wv;
    *m = mv;
    if (h.kind != 0) *v = vv;
}

// AdamW's per-step scalars for step t, as src/backend/cpu/optim.rs adamw_scalars: in
// double, 1 - beta^t as -expm1(t ln beta).
__device__ __forceinline__ void adamw_scalars(const MemberHparams& h, unsigned long long t,
                                              MemberState* s) {
    double tt = (double)(t > 0 ? t : 1);
    double bias1 = -expm1(tt * log((double)h.beta1));
    double bias2 = -expm1(tt * log((double)h.beta2));
    s->step_size = (float)((double)h.lr / bias1);
    s->sqrt_bias2 = (float)sqrt(bias2);
}
