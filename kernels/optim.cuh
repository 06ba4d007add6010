// The optimizer update of one parameter, the CPU twin's arithmetic
// (src/backend/cpu/optim.rs, PyTorch's SGD and AdamW). Used by the weight-gradient
// epilogue in linear.cu (the gradient never goes to memory) and by optim.cu.
#pragma once
#include "population.cuh"

__device__ __forceinline__ void optimizer_update(const MemberHparams& h, const MemberState& s,
                                                 float* w, float g, float* m, float* v) {
    float wv = *w;
    if (h.kind == 0) {
        g = g + h.weight_decay * wv;
        float mv = h.momentum * *m + g;
        *m = mv;
        *w = wv - h.lr * mv;
    } else {
        wv = wv * (1.0f - h.lr * h.weight_decay);
        float mv = h.beta1 * *m + (1.0f - h.beta1) * g;
        float vv = h.beta2 * *v + (1.0f - h.beta2) * g * g;
        *m = mv;
        *v = vv;
        *w = wv - s.step_size * mv / (sqrtf(vv) / s.sqrt_bias2 + h.eps);
    }
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
