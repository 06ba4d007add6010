// Inverted dropout, the CPU twin's (src/backend/cpu/dropout.rs) mask: element e of layer
// `layer` at step `step` of the member seeded `seed` is kept iff unit_f32(word) >= rate.
#pragma once
#include "rng.cuh"

#define STREAM_DROPOUT 2u

// 0 for a dropped element, 1/(1-rate) for a kept one.
__device__ __forceinline__ float dropout_scale(unsigned long long seed, unsigned long long step,
                                               unsigned int layer, unsigned long long element,
                                               float rate) {
    unsigned int step_lo = (unsigned int)step;
    unsigned int step_hi_and_layer = (unsigned int)(step >> 32) ^ (layer << 24);
    unsigned int word = stream_word(seed, STREAM_DROPOUT, step_lo, step_hi_and_layer, element);
    return unit_f32(word) >= rate ? 1.0f / (1.0f - rate) : 0.0f;
}
