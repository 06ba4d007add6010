// Philox4x32-10, word for word the CPU twin in src/rng.rs: a random word is a pure function
// of (key, counter), so masks drawn here equal the CPU's bit for bit.
#pragma once

__device__ __forceinline__ uint4 philox4x32(unsigned long long key, uint4 c) {
    unsigned int k0 = (unsigned int)key, k1 = (unsigned int)(key >> 32);
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        unsigned int hi0 = __umulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        unsigned int hi1 = __umulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = make_uint4(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
    }
    return c;
}

// src/rng.rs stream_word: the index-th word of stream (key, stream, a, b).
__device__ __forceinline__ unsigned int stream_word(unsigned long long key, unsigned int stream,
                                                    unsigned int a, unsigned int b,
                                                    unsigned long long index) {
    unsigned long long block = index >> 2;
    unsigned int hi = (unsigned int)(block >> 32);
    uint4 r = philox4x32(key, make_uint4((unsigned int)block, a, b ^ ((hi << 16) | (hi >> 16)), stream));
    switch (index & 3) {
        case 0: return r.x;
        case 1: return r.y;
        case 2: return r.z;
        default: return r.w;
    }
}

// src/rng.rs unit_f32: 24 random bits in [0, 1), exact in f32.
__device__ __forceinline__ float unit_f32(unsigned int word) {
    return (float)(word >> 8) * (1.0f / 16777216.0f);
}
