// Inverted dropout, the CPU twin's (src/backend/cpu/dropout.rs) mask: element e of layer
// `layer` at step `step` of the member seeded `seed` is kept iff unit_f32(word) >= rate,
// the word taken from the stream of the kind of dropout (src/rng.rs Stream).
#pragma once
#include "rng.cuh"

#define STREAM_DROPOUT 2u
#define STREAM_SPATIAL_DROPOUT 7u

// 0 for a dropped element, 1/(1-rate) for a kept one, from `stream`.
__device__ __forceinline__ float stream_dropout_scale(unsigned long long seed, unsigned int stream,
                                                      unsigned long long step, unsigned int layer,
                                                      unsigned long long element, float rate) {
    unsigned int step_lo = (unsigned int)step;
    unsigned int step_hi_and_layer = (unsigned int)(step >> 32) ^ (layer << 24);
    unsigned int word = stream_word(seed, stream, step_lo, step_hi_and_layer, element);
    return unit_f32(word) >= rate ? 1.0f / (1.0f - rate) : 0.0f;
}

// Dropout of single values.
__device__ __forceinline__ float dropout_scale(unsigned long long seed, unsigned long long step,
                                               unsigned int layer, unsigned long long element,
                                               float rate) {
    return stream_dropout_scale(seed, STREAM_DROPOUT, step, layer, element, rate);
}
