// One in-place layer of one member (activation.cu, dropout.cu): `width` values per row of
// the block at `off`.
#pragma once

struct ElementProblem {
    long long off;
    long long aux_off;  // an activation other than ReLU: its saved input, in the saved buffer
    int width;
    int channels;       // spatial dropout: the block's channel planes; 0 otherwise
    int member;
    int layer;          // the dropout mask's key: the block's index in the member's network
    int kind;           // the activation (activation.cu)
    int pad;
};
static_assert(sizeof(ElementProblem) == 40, "ElementProblem layout (src/backend/cuda/layout.rs)");
