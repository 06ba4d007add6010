// Runs kernels of kernels/*.cu on the CPU (cuda_shim.h) for tests/kernel_emulation.rs.
//
// Usage: harness DIR. DIR/launch.txt holds launches in order, each `launch NAME GX GY GZ BX
// BY BZ` followed by its arguments in order: `buf NAME` (the bytes of DIR/NAME.bin, loaded
// once and shared by every launch), `int VALUE`, `float VALUE` or `null`. After the last
// launch every buffer is written back to DIR/NAME.out.
#include "cuda_shim.h"

#include "../../kernels/activation.cu"
#include "../../kernels/attention.cu"
#include "../../kernels/conv.cu"
#include "../../kernels/dropout.cu"
#include "../../kernels/gather.cu"
#include "../../kernels/loss.cu"
#include "../../kernels/norm.cu"
#include "../../kernels/optim.cu"
#include "../../kernels/pool.cu"
#include "../../kernels/tokens.cu"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

struct Arg {
    std::string buffer;  // empty: an int, a float, or null
    long long value = 0;
    float real = 0.0f;
};

static std::map<std::string, std::vector<unsigned long long>> buffers;
static std::map<std::string, size_t> sizes;

static void* ptr(const Arg& a) { return a.buffer.empty() ? nullptr : buffers[a.buffer].data(); }

static bool load(const std::string& dir, const std::string& name) {
    if (buffers.count(name)) return true;
    std::ifstream in(dir + "/" + name + ".bin", std::ios::binary | std::ios::ate);
    if (!in) return false;
    size_t n = (size_t)in.tellg();
    in.seekg(0);
    // Stored as 8-byte words: every struct the kernels read is 8-byte aligned.
    std::vector<unsigned long long> data((n + 7) / 8 + 1);
    in.read(reinterpret_cast<char*>(data.data()), (std::streamsize)n);
    buffers[name] = std::move(data);
    sizes[name] = n;
    return true;
}

// Runs one launch; false for an unknown kernel.
static bool run(const std::string& kernel, dim3 grid, dim3 block, const std::vector<Arg>& args) {
    auto P = [&](size_t i) { return ptr(args.at(i)); };
    auto I = [&](size_t i) { return (int)args.at(i).value; };
    using F = float*;
    using CF = const float*;
    using S = const MemberState*;
    using H = const MemberHparams*;
    using U = unsigned int*;
    using CU = const unsigned int*;
    if (kernel == "conv_forward") {
        emulate_launch(grid, block, [&] { conv_forward((const ConvProblem*)P(0), I(1), (CF)P(2), (CF)P(3), (F)P(4), (S)P(5)); });
    } else if (kernel == "conv_backward_x") {
        emulate_launch(grid, block, [&] { conv_backward_x((const ConvProblem*)P(0), I(1), (CF)P(2), (CF)P(3), (F)P(4), (S)P(5)); });
    } else if (kernel == "conv_backward_w") {
        emulate_launch(grid, block, [&] { conv_backward_w((const ConvProblem*)P(0), I(1), (CF)P(2), (CF)P(3), (F)P(4), (S)P(5)); });
    } else if (kernel == "pool_forward") {
        emulate_launch(grid, block, [&] { pool_forward((const PoolProblem*)P(0), I(1), (F)P(2), (U)P(3), (S)P(4)); });
    } else if (kernel == "pool_backward") {
        emulate_launch(grid, block, [&] { pool_backward((const PoolProblem*)P(0), I(1), (F)P(2), (CU)P(3), (S)P(4)); });
    } else if (kernel == "batch_norm_stats") {
        emulate_launch(grid, block, [&] { batch_norm_stats((const NormProblem*)P(0), I(1), (CF)P(2), (F)P(3), (S)P(4)); });
    } else if (kernel == "batch_norm_forward") {
        emulate_launch(grid, block, [&] { batch_norm_forward((const NormProblem*)P(0), I(1), (F)P(2), (CF)P(3), (CF)P(4), I(5), (S)P(6)); });
    } else if (kernel == "batch_norm_backward") {
        emulate_launch(grid, block, [&] { batch_norm_backward((const NormProblem*)P(0), I(1), (CF)P(2), (CF)P(3), (CF)P(4), I(5), (F)P(6), (F)P(7), (S)P(8)); });
    } else if (kernel == "batch_norm_running") {
        emulate_launch(grid, block, [&] { batch_norm_running((const NormProblem*)P(0), I(1), (CF)P(2), (F)P(3), (S)P(4)); });
    } else if (kernel == "activation_forward") {
        emulate_launch(grid, block, [&] { activation_forward((const ElementProblem*)P(0), I(1), (F)P(2), (F)P(3), (S)P(4)); });
    } else if (kernel == "activation_backward") {
        emulate_launch(grid, block, [&] { activation_backward((const ElementProblem*)P(0), I(1), (CF)P(2), (CF)P(3), (F)P(4), (S)P(5)); });
    } else if (kernel == "token_forward") {
        emulate_launch(grid, block, [&] { token_forward((const TokenProblem*)P(0), I(1), (F)P(2), (CF)P(3), (S)P(4)); });
    } else if (kernel == "token_backward") {
        emulate_launch(grid, block, [&] { token_backward((const TokenProblem*)P(0), I(1), (F)P(2), (F)P(3), (F)P(4), (S)P(5)); });
    } else if (kernel == "layer_norm_forward") {
        emulate_launch(grid, block, [&] { layer_norm_forward((const LayerNormProblem*)P(0), I(1), (F)P(2), (CF)P(3), (F)P(4), (S)P(5)); });
    } else if (kernel == "layer_norm_backward") {
        emulate_launch(grid, block, [&] { layer_norm_backward((const LayerNormProblem*)P(0), I(1), (CF)P(2), (CF)P(3), (CF)P(4), (F)P(5), (S)P(6)); });
    } else if (kernel == "layer_norm_params") {
        emulate_launch(grid, block, [&] { layer_norm_params((const LayerNormProblem*)P(0), I(1), (CF)P(2), (CF)P(3), (CF)P(4), (F)P(5), (S)P(6)); });
    } else if (kernel == "attention_forward") {
        emulate_launch(grid, block, [&] { attention_forward((const AttentionProblem*)P(0), I(1), (F)P(2), (F)P(3), (H)P(4), (S)P(5)); });
    } else if (kernel == "attention_backward") {
        emulate_launch(grid, block, [&] { attention_backward((const AttentionProblem*)P(0), I(1), (CF)P(2), (CF)P(3), (F)P(4), (H)P(5), (S)P(6)); });
    } else if (kernel == "dropout_forward") {
        emulate_launch(grid, block, [&] { dropout_forward((const ElementProblem*)P(0), I(1), (F)P(2), (H)P(3), (S)P(4)); });
    } else if (kernel == "dropout_backward") {
        emulate_launch(grid, block, [&] { dropout_backward((const ElementProblem*)P(0), I(1), (F)P(2), (H)P(3), (S)P(4)); });
    } else if (kernel == "gather_rows") {
        emulate_launch(grid, block, [&] { gather_rows((CF)P(0), (CU)P(1), (CU)P(2), I(3), (const int*)P(4), I(5), I(6), (F)P(7), (U)P(8)); });
    } else if (kernel == "softmax_cross_entropy") {
        emulate_launch(grid, block, [&] { softmax_cross_entropy((const LossProblem*)P(0), (CF)P(1), (CU)P(2), I(3), (F)P(4), (H)P(5), (MemberState*)P(6), I(7), args.at(8).real, I(9)); });
    } else if (kernel == "optimizer_step") {
        emulate_launch(grid, block, [&] { optimizer_step((CF)P(0), (F)P(1), (F)P(2), (F)P(3), (const long long*)P(4), (H)P(5), (S)P(6)); });
    } else {
        return false;
    }
    return true;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: harness DIR\n";
        return 2;
    }
    const std::string dir = argv[1];
    std::ifstream script(dir + "/launch.txt");
    std::string word;
    script >> word;
    while (word == "launch") {
        std::string kernel;
        dim3 grid, block;
        script >> kernel >> grid.x >> grid.y >> grid.z >> block.x >> block.y >> block.z;
        std::vector<Arg> args;
        while (true) {
            if (!(script >> word)) {
                word.clear();
                break;
            }
            if (word == "launch") break;
            Arg a;
            if (word == "buf") {
                script >> a.buffer;
                if (!load(dir, a.buffer)) {
                    std::cerr << "harness: cannot read " << dir << "/" << a.buffer << ".bin\n";
                    return 2;
                }
            } else if (word == "int") {
                script >> a.value;
            } else if (word == "float") {
                script >> a.real;
            } else if (word != "null") {
                std::cerr << "harness: unknown argument kind " << word << "\n";
                return 2;
            }
            args.push_back(a);
        }
        if (!run(kernel, grid, block, args)) {
            std::cerr << "harness: unknown kernel " << kernel << "\n";
            return 2;
        }
    }
    if (!word.empty()) {
        std::cerr << "harness: expected `launch`, found " << word << "\n";
        return 2;
    }
    for (auto& [name, data] : buffers) {
        std::ofstream out(dir + "/" + name + ".out", std::ios::binary);
        out.write(reinterpret_cast<const char*>(data.data()), (std::streamsize)sizes[name]);
    }
    return 0;
}
