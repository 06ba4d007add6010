// One in-place layer of one member (activation.cu, dropout.cu): `width` values per row of
// the block at `off`.
#pragma once

struct ElementProblem {
    long long off;
    int width;
    int channels;  // spatial dropout: the block's channel planes; 0 otherwise
    int member;
    int layer;     // the dropout mask's key: the block's index in the member's network
};
static_assert(sizeof(ElementProblem) == 24, "ElementProblem layout (src/backend/cuda/layout.rs)");
