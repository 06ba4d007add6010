// Softmax cross-entropy of every member's logits, forward and backward fused, plus the
// per-member reductions and the health check. CPU twins: src/backend/cpu/loss.rs and
// src/train/health.rs.
//
// One block per member: its rows' losses, correct counts and (training) the gradient of the
// batch-mean loss, (softmax − onehot) / rows. Thread 0 then either records the batch (and
// advances the member's step, preparing its scheduled learning rate and AdamW's scalars
// for the update launches that follow) or, when the mean loss is non-finite or above the
// divergence limit, marks the member dead before any update touches its weights.
#include "optim.cuh"

struct LossProblem {
    long long logits_off;  // into the activations buffer; the gradient goes to the same offset of dlogits
    int classes;
    int member;
};
static_assert(sizeof(LossProblem) == 16, "LossProblem layout (src/backend/cuda/layout.rs)");

#define LOSS_THREADS 128

extern "C" __global__ void __launch_bounds__(LOSS_THREADS)
softmax_cross_entropy(const LossProblem* __restrict__ problems, const float* __restrict__ logits,
                      const unsigned int* __restrict__ labels, int rows, float* dlogits,
                      const MemberHparams* __restrict__ hp, MemberState* state, int training,
                      float divergence_factor, int steps_per_epoch) {
    const LossProblem p = problems[blockIdx.x];
    MemberState* s = &state[p.member];
    if (training && !s->alive) return;
    const float* z = logits + p.logits_off;
    float inv_rows = 1.0f / (float)rows;
    double loss = 0.0;
    unsigned long long correct = 0;
    for (int r = threadIdx.x; r < rows; r += blockDim.x) {
        const float* row = z + (long long)r * p.classes;
        int argmax = 0;
        for (int c = 1; c < p.classes; ++c)
            if (row[c] > row[argmax]) argmax = c;
        float mx = row[argmax], total = 0.0f;
        for (int c = 0; c < p.classes; ++c) total += expf(row[c] - mx);
        unsigned int label = labels[r];
        loss += (double)(logf(total) + mx - row[label]);
        correct += (argmax == (int)label);
        if (training) {
            float* d = dlogits + p.logits_off + (long long)r * p.classes;
            for (int c = 0; c < p.classes; ++c)
                d[c] = (expf(row[c] - mx) / total - (c == (int)label ? 1.0f : 0.0f)) * inv_rows;
        }
    }
    // Block reduction in a fixed order: the result does not depend on timing.
    __shared__ double loss_part[LOSS_THREADS];
    __shared__ unsigned long long correct_part[LOSS_THREADS];
    loss_part[threadIdx.x] = loss;
    correct_part[threadIdx.x] = correct;
    __syncthreads();
    for (int stride = LOSS_THREADS / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) {
            loss_part[threadIdx.x] += loss_part[threadIdx.x + stride];
            correct_part[threadIdx.x] += correct_part[threadIdx.x + stride];
        }
        __syncthreads();
    }
    if (threadIdx.x != 0) return;
    if (!training) {
        s->eval_loss += loss_part[0];
        s->eval_correct += correct_part[0];
        return;
    }
    double mean = loss_part[0] / rows;
    double limit = (double)divergence_factor * log((double)p.classes);
    if (!isfinite(mean) || mean > limit) {
        s->alive = 0;
        s->fail_step = s->steps;
        s->fail_loss = (float)mean;
        return;
    }
    s->train_loss += loss_part[0];
    s->train_correct += correct_part[0];
    s->steps += 1;
    step_scalars(hp[p.member], s->steps, steps_per_epoch, s);
}
