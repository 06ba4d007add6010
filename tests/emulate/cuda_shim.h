// Just enough of CUDA's device-side language for kernels/*.cu to compile as C++ and run on
// the CPU, for the kernel-emulation test (tests/kernel_emulation.rs) on machines without a
// GPU. A launch runs its blocks one after another; each block's threads are real threads,
// so __syncthreads is a barrier and __shared__ variables (function statics, one block at a
// time) are shared within the block exactly as on a GPU. Warp intrinsics, atomics and
// inline PTX are not provided: a kernel that needs them does not compile here.
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <math.h>
#include <thread>
#include <vector>

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
struct uint4 {
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678f); }
inline unsigned __umulhi(unsigned a, unsigned b) {
    return (unsigned)(((unsigned long long)a * b) >> 32);
}

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static

namespace emu {
inline thread_local uint3 thread_index;
inline thread_local std::barrier<>* block_barrier = nullptr;
inline uint3 block_index;
inline dim3 block_dim, grid_dim;
}  // namespace emu

#define threadIdx (emu::thread_index)
#define blockIdx (emu::block_index)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }

// Runs `kernel` (a callable with no arguments that calls the kernel) over the grid. The
// block's threads are started once per launch and walk the blocks in step: a thread that
// returns early from the kernel drops out of that block's barrier, and all meet again
// before the next block starts.
template <class F>
void emulate_launch(dim3 grid, dim3 block, F kernel) {
    emu::grid_dim = grid;
    emu::block_dim = block;
    const unsigned n = block.x * block.y * block.z;
    const unsigned blocks = grid.x * grid.y * grid.z;
    std::barrier<> start(n + 1), end(n + 1);
    std::barrier<>* current = nullptr;
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (unsigned t = 0; t < n; ++t)
        threads.emplace_back([&, t] {
            emu::thread_index = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
            for (unsigned b = 0; b < blocks; ++b) {
                start.arrive_and_wait();
                emu::block_barrier = current;
                kernel();
                current->arrive_and_drop();
                end.arrive_and_wait();
            }
        });
    for (unsigned b = 0; b < blocks; ++b) {
        emu::block_index = {b % grid.x, (b / grid.x) % grid.y, b / (grid.x * grid.y)};
        std::barrier<> barrier(n);
        current = &barrier;
        start.arrive_and_wait();
        end.arrive_and_wait();
    }
    for (auto& t : threads) t.join();
}
