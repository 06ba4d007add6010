// The shared minibatch: rows `order[start .. start+rows)` of the device-resident data set,
// copied into one contiguous (rows × features) block that every member's first layer
// reads. CPU twin: Dataset::subset in src/data/mod.rs.
extern "C" __global__ void gather_rows(const float* __restrict__ features,
                                       const unsigned int* __restrict__ labels,
                                       const unsigned int* __restrict__ order, int start, int rows,
                                       int n_features, float* __restrict__ x,
                                       unsigned int* __restrict__ y) {
    long long total = (long long)rows * n_features;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        long long r = e / n_features, f = e % n_features;
        unsigned int src = order[start + r];
        x[e] = features[(long long)src * n_features + f];
        if (f == 0) y[r] = labels[src];
    }
}
