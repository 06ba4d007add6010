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
        w = w - s.lr * m;
    } else {
        w = w * (1.0f - s.lr * h.weight_decay);
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

// The learning-rate schedule's factor for update t (1-based) with steps_per_epoch batches
// an epoch, in double as src/model/hparams.rs LrSchedule::factor: warm-up reaches 1 at its
// last step; decay is evaluated at the epochs completed before the step.
__device__ __forceinline__ float schedule_factor(const MemberHparams& h, unsigned long long t,
                                                 int steps_per_epoch) {
    const double spe = (double)(steps_per_epoch > 0 ? steps_per_epoch : 1);
    const double done = (double)((t > 0 ? t : 1) - 1) / spe;
    double decay = 1.0;
    if (h.schedule == 1) {
        decay = pow((double)h.gamma, floor(done / fmax((double)h.decay_epochs, 1e-9)));
    } else if (h.schedule == 2) {
        double x = fmin(done / fmax((double)h.decay_epochs, 1e-9), 1.0);
        decay = 0.5 * (1.0 + cos(3.14159265358979323846 * x));
    }
    const double warmup_steps = (double)h.warmup_epochs * spe;
    const double warm = warmup_steps > 0.0 ? fmin((double)t / warmup_steps, 1.0) : 1.0;
    return (float)(decay * warm);
}

// The member's scalars for its update t: the scheduled learning rate, and AdamW's step size
// lr / (1 - beta1^t) and sqrt(1 - beta2^t) as src/backend/cpu/optim.rs adamw_scalars: in
// double, 1 - beta^t as -expm1(t ln beta).
__device__ __forceinline__ void step_scalars(const MemberHparams& h, unsigned long long t,
                                             int steps_per_epoch, MemberState* s) {
    s->lr = h.lr * schedule_factor(h, t, steps_per_epoch);
    double tt = (double)(t > 0 ? t : 1);
    double bias1 = -expm1(tt * log((double)h.beta1));
    double bias2 = -expm1(tt * log((double)h.beta2));
    s->step_size = (float)((double)s->lr / bias1);
    s->sqrt_bias2 = (float)sqrt(bias2);
}
