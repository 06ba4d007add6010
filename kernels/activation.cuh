// ReLU, the CPU twin's (src/backend/cpu/activation.rs): forward max(x, 0); backward keeps
// the gradient where the layer's *output* is positive (so no pre-activation is stored).
#pragma once

__device__ __forceinline__ float relu(float x) { return fmaxf(x, 0.0f); }
