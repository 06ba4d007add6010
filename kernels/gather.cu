// The shared minibatch: rows `order[start .. start+rows)` of the device-resident data set,
// copied into one contiguous (rows × features) block that every member's first layer
// reads. CPU twin: Dataset::subset in src/data/mod.rs.
//
// With `cursor` set, the batch starts at start + (*cursor)·rows and advance_cursor moves it
// on: the launches of one step then have the same arguments at every step, so the step is
// captured once as a CUDA graph and replayed.
extern "C" __global__ void gather_rows(const float* __restrict__ features,
                                       const unsigned int* __restrict__ labels,
                                       const unsigned int* __restrict__ order, int start,
                                       const int* __restrict__ cursor, int rows, int n_features,
                                       float* __restrict__ x, unsigned int* __restrict__ y) {
    long long first = start + (cursor != nullptr ? (long long)*cursor * rows : 0);
    long long total = (long long)rows * n_features;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        long long r = e / n_features, f = e % n_features;
        unsigned int src = order[first + r];
        x[e] = features[(long long)src * n_features + f];
        if (f == 0) y[r] = labels[src];
    }
}

extern "C" __global__ void advance_cursor(int* cursor) { *cursor += 1; }
