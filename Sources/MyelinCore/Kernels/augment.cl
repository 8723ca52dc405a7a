// Data augmentation on the device: random crop with zero padding and random horizontal flip of NCHW images,
// one launch per batch. Each image's draws come from a counter-based hash of (seed, image), bit-identical to
// `AugmentDraw` in Sources/MyelinCore/Tensor/AugmentOps.swift (the CPU's version).

// splitmix64's finalizer over seed + (index + 1)·golden ratio: the 64 bits behind `random_uniform` (common.cl).
inline ulong augment_bits(ulong seed, ulong index) {
    ulong z = seed + (index + 1UL) * 0x9E3779B97F4A7C15UL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

// One work item per output pixel: global = [w, h, n*c]. Image n is shifted by (dy - pad, dx - pad) with dy, dx in
// 0..2·pad (16-bit fields of the hash scaled to the span), then mirrored left-right when `flip` is set and bit 31
// of the hash is; pixels from outside the image are 0:
// out[n, ch, y, x] = x[n, ch, y + dy - pad, x' + dx - pad] with x' = w - 1 - x when mirrored, else x.
__kernel void random_crop_flip(__global const float* x, __global float* out, int c, int h, int w, int pad,
                               int flip, ulong seed) {
    int xo = get_global_id(0);
    int yo = get_global_id(1);
    int plane = get_global_id(2);
    if (xo >= w || yo >= h) return;
    int n = plane / c;
    ulong z = augment_bits(seed, (ulong)n);
    ulong span = (ulong)(2 * pad + 1);
    int dy = (int)(((z >> 48) * span) >> 16);
    int dx = (int)((((z >> 32) & 0xFFFFUL) * span) >> 16);
    int mirrored = flip != 0 && ((z >> 31) & 1UL) != 0;
    int xs = (mirrored ? w - 1 - xo : xo) + dx - pad;
    int ys = yo + dy - pad;
    float v = 0.0f;
    if (ys >= 0 && ys < h && xs >= 0 && xs < w) v = x[((long)plane * h + ys) * w + xs];
    out[((long)plane * h + yo) * w + xo] = v;
}
