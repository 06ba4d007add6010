// Per-member arrays shared by every kernel: the member's hyperparameters (set by the host
// when the population changes) and its device-side training state (written by the
// kernels). Rust mirror: src/backend/cuda/layout.rs (#[repr(C)], same field order).
#pragma once

// One member's hyperparameters. kind: 0 = SGD, 1 = AdamW (src/backend/cpu/optim.rs). The
// learning-rate schedule (src/model/hparams.rs LrSchedule): a linear warm-up over
// warmup_epochs, then schedule 0 = constant, 1 = ×gamma every decay_epochs, 2 = a cosine to
// 0 over decay_epochs.
struct MemberHparams {
    int kind;
    float lr, momentum, weight_decay, beta1, beta2, eps;
    float dropout;
    float attn_dropout;  // transformers: dropout on the attention weights
    int schedule;
    float warmup_epochs, decay_epochs, gamma;
    int pad;
    unsigned long long seed;
};

// One member's training state on the device.
struct MemberState {
    unsigned long long steps;          // optimizer steps taken (dropout key, Adam's t)
    double train_loss;                 // sum of row losses since the host last cleared it
    unsigned long long train_correct;  // rows whose arg-max was the label, likewise
    double eval_loss;                  // the same for evaluation passes
    unsigned long long eval_correct;
    unsigned long long fail_step;      // the step whose loss failed the health check
    float fail_loss;                   // that step's mean loss
    int alive;                         // 0 once diverged: every kernel skips the member
    float step_size;                   // AdamW: lr / (1 - beta1^t) for the current t
    float sqrt_bias2;                  // AdamW: sqrt(1 - beta2^t)
    unsigned int nonfinite_params;     // set by check_params (epoch.cu) after an epoch
    float lr;                          // this step's learning rate: the base times the schedule's factor
};

// The Rust mirrors (src/backend/cuda/layout.rs) assert the same sizes.
static_assert(sizeof(MemberHparams) == 64, "MemberHparams layout");
static_assert(sizeof(MemberState) == 72, "MemberState layout");
