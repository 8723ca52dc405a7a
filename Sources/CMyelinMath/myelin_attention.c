// See include/myelin_attention.h.
#include "myelin_attention.h"
#include "myelin_activations.h"
#include "myelin_gemm.h"
#include <math.h>
#include <string.h>

/// Keys rounded up to whole pairs of 8-wide vectors: the panel's row length.
static long padded_keys(long keys) { return (keys + 15) & ~15L; }

long myelin_attention_scratch(long keys, long d) { return padded_keys(keys) * (d + 4); }

#if defined(__x86_64__)
typedef float f8 __attribute__((ext_vector_type(8)));
#define AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

AVX2 f8 load8(const float *p) { f8 v; memcpy(&v, p, sizeof v); return v; }
AVX2 void store8(float *p, f8 v) { memcpy(p, &v, sizeof v); }
AVX2 f8 fma8(f8 a, f8 b, f8 c) { return __builtin_elementwise_fma(a, b, c); }
AVX2 f8 splat(float x) { return (f8){x, x, x, x, x, x, x, x}; }

/// a16[r] (16 columns as two vectors) = Σ_{t < n} x[r·ldx + t] · y[t·ldy ..< t·ldy + 16] for R (≤ 4, a constant
/// once inlined) rows: the rank-1 updates both of the attention's products are made of.
AVX2 void rank1_16(const int R, long n, const float *x, long ldx, const float *y, long ldy, f8 a16[4][2]) {
    for (int r = 0; r < R; r++) a16[r][0] = a16[r][1] = splat(0.f);
    for (long t = 0; t < n; t++) {
        f8 y0 = load8(y + t * ldy), y1 = load8(y + t * ldy + 8);
        for (int r = 0; r < R; r++) {
            f8 xr = splat(x[r * ldx + t]);
            a16[r][0] = fma8(xr, y0, a16[r][0]);
            a16[r][1] = fma8(xr, y1, a16[r][1]);
        }
    }
}

/// As rank1_16 for 8 columns.
AVX2 void rank1_8(const int R, long n, const float *x, long ldx, const float *y, long ldy, f8 a8[4]) {
    for (int r = 0; r < R; r++) a8[r] = splat(0.f);
    for (long t = 0; t < n; t++) {
        f8 y0 = load8(y + t * ldy);
        for (int r = 0; r < R; r++) a8[r] = fma8(splat(x[r * ldx + t]), y0, a8[r]);
    }
}

/// s[r·kp + j] = q_r · k_j for R query rows and keys [0, cols8), from the transposed key panel kt [d, kp].
AVX2 void scores_rows(const int R, long d, const float *q, long ldq, const float *kt, long kp, long cols8, float *s) {
    long j = 0;
    f8 a16[4][2], a8[4];
    for (; j + 16 <= cols8; j += 16) {
        rank1_16(R, d, q, ldq, kt + j, kp, a16);
        for (int r = 0; r < R; r++) { store8(s + r * kp + j, a16[r][0]); store8(s + r * kp + j + 8, a16[r][1]); }
    }
    if (j < cols8) {   // the last 8 keys
        rank1_8(R, d, q, ldq, kt + j, kp, a8);
        for (int r = 0; r < R; r++) store8(s + r * kp + j, a8[r]);
    }
}

/// out_r = inv[r] · Σ_{j < cols} p[r·kp + j] · v_j for R rows, 16 (then 8) columns of the head at a time.
AVX2 void values_rows(const int R, long d, const float *p, long kp, const float *v, long ldv, long cols, float *out,
                      long ldo, const float *inv) {
    long c = 0;
    f8 a16[4][2], a8[4];
    for (; c + 16 <= d; c += 16) {
        rank1_16(R, cols, p, kp, v + c, ldv, a16);
        for (int r = 0; r < R; r++) {
            store8(out + r * ldo + c, a16[r][0] * splat(inv[r]));
            store8(out + r * ldo + c + 8, a16[r][1] * splat(inv[r]));
        }
    }
    if (c < d) {   // the last 8 columns (d is a multiple of 8)
        rank1_8(R, cols, p, kp, v + c, ldv, a8);
        for (int r = 0; r < R; r++) store8(out + r * ldo + c, a8[r] * splat(inv[r]));
    }
}

/// row[j] = scale · row[j] + m[j·maskCol] (m may be null) for j < n, and the largest of them (−∞ when n = 0): 8 at a
/// time where the mask is contiguous or absent.
AVX2 float scale_mask_max(float *row, long n, float scale, const float *m, long maskCol) {
    long j = 0;
    float top = -INFINITY;
    if (!m || maskCol == 1) {
        f8 best = splat(-INFINITY);
        for (; j + 8 <= n; j += 8) {
            f8 x = load8(row + j) * splat(scale);
            if (m) x += load8(m + j);
            store8(row + j, x);
            best = __builtin_elementwise_max(best, x);
        }
        for (int lane = 0; lane < 8; lane++) top = best[lane] > top ? best[lane] : top;
    }
    for (; j < n; j++) {
        float x = row[j] * scale + (m ? m[j * maskCol] : 0.f);
        row[j] = x;
        top = x > top ? x : top;
    }
    return top;
}

/// kt[c·kp + j] = k[j·ldk + c] for j < keys, c < d (a multiple of 8): 8×8 blocks through registers (stores one
/// float at a time, each to another row of the panel, were 40% of the kernel's time).
AVX2 void transpose_keys(const float *k, long ldk, long keys, long d, float *kt, long kp) {
    long j = 0;
    for (; j + 8 <= keys; j += 8) {
        for (long c = 0; c < d; c += 8) {
            const float *b = k + j * ldk + c;
            f8 r0 = load8(b), r1 = load8(b + ldk), r2 = load8(b + 2 * ldk), r3 = load8(b + 3 * ldk);
            f8 r4 = load8(b + 4 * ldk), r5 = load8(b + 5 * ldk), r6 = load8(b + 6 * ldk), r7 = load8(b + 7 * ldk);
            f8 t0 = __builtin_shufflevector(r0, r1, 0, 8, 1, 9, 4, 12, 5, 13);
            f8 t1 = __builtin_shufflevector(r0, r1, 2, 10, 3, 11, 6, 14, 7, 15);
            f8 t2 = __builtin_shufflevector(r2, r3, 0, 8, 1, 9, 4, 12, 5, 13);
            f8 t3 = __builtin_shufflevector(r2, r3, 2, 10, 3, 11, 6, 14, 7, 15);
            f8 t4 = __builtin_shufflevector(r4, r5, 0, 8, 1, 9, 4, 12, 5, 13);
            f8 t5 = __builtin_shufflevector(r4, r5, 2, 10, 3, 11, 6, 14, 7, 15);
            f8 t6 = __builtin_shufflevector(r6, r7, 0, 8, 1, 9, 4, 12, 5, 13);
            f8 t7 = __builtin_shufflevector(r6, r7, 2, 10, 3, 11, 6, 14, 7, 15);
            f8 u0 = __builtin_shufflevector(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13);
            f8 u1 = __builtin_shufflevector(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
            f8 u2 = __builtin_shufflevector(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13);
            f8 u3 = __builtin_shufflevector(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
            f8 u4 = __builtin_shufflevector(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13);
            f8 u5 = __builtin_shufflevector(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15);
            f8 u6 = __builtin_shufflevector(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13);
            f8 u7 = __builtin_shufflevector(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15);
            float *o = kt + c * kp + j;
            store8(o, __builtin_shufflevector(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11));
            store8(o + kp, __builtin_shufflevector(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11));
            store8(o + 2 * kp, __builtin_shufflevector(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11));
            store8(o + 3 * kp, __builtin_shufflevector(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11));
            store8(o + 4 * kp, __builtin_shufflevector(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15));
            store8(o + 5 * kp, __builtin_shufflevector(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15));
            store8(o + 6 * kp, __builtin_shufflevector(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15));
            store8(o + 7 * kp, __builtin_shufflevector(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15));
        }
    }
    for (long c = 0; c < d; c++) {
        for (long jj = j; jj < keys; jj++) kt[c * kp + jj] = k[jj * ldk + c];
    }
}

/// The keys query i sees: all, or with `causal` the first i + keys − queries + 1 (none below 0).
static long visible_keys(long i, long queries, long keys, int causal) {
    if (!causal) return keys;
    long n = i + keys - queries + 1;
    return n < 0 ? 0 : (n < keys ? n : keys);
}

__attribute__((target("avx2,fma")))
static void attention_rows_avx2(long queries, long keys, long d, float scale, const float *q, long ldq, const float *k,
                                const float *v, long ldkv, const float *mask, long maskRow, long maskCol, int causal,
                                float *out, long ldo, float *lse, long i0, long i1, float *scratch) {
    long kp = padded_keys(keys);
    float *kt = scratch, *s = scratch + d * kp;
    long last = visible_keys(i1 - 1, queries, keys, causal);   // the most keys any row of the block sees
    long cols8 = (last + 7) & ~7L;
    transpose_keys(k, ldkv, last, d, kt, kp);
    for (long c = 0; c < d; c++) memset(kt + c * kp + last, 0, (size_t)(cols8 - last) * sizeof(float));
    for (long i = i0; i < i1; i += 4) {
        int rows = i1 - i < 4 ? (int)(i1 - i) : 4;
        const float *qi = q + i * ldq;
        switch (rows) {
        case 4: scores_rows(4, d, qi, ldq, kt, kp, cols8, s); break;
        case 3: scores_rows(3, d, qi, ldq, kt, kp, cols8, s); break;
        case 2: scores_rows(2, d, qi, ldq, kt, kp, cols8, s); break;
        default: scores_rows(1, d, qi, ldq, kt, kp, cols8, s); break;
        }
        float inv[4];
        for (int r = 0; r < rows; r++) {
            float *row = s + r * kp;
            long seen = visible_keys(i + r, queries, keys, causal);
            float top = scale_mask_max(row, seen, scale, mask ? mask + (i + r) * maskRow : NULL, maskCol);
            float sum = 0.f;
            if (top == -INFINITY) {
                memset(row, 0, (size_t)seen * sizeof(float));   // every key masked: 0 · ∞ below gives NaN
            } else {
                sum = myelin_exp_shifted(row, seen, top);
            }
            if (seen < last) memset(row + seen, 0, (size_t)(last - seen) * sizeof(float));
            inv[r] = 1.f / sum;
            lse[i + r] = top + logf(sum);
        }
        float *o = out + i * ldo;
        switch (rows) {
        case 4: values_rows(4, d, s, kp, v, ldkv, last, o, ldo, inv); break;
        case 3: values_rows(3, d, s, kp, v, ldkv, last, o, ldo, inv); break;
        case 2: values_rows(2, d, s, kp, v, ldkv, last, o, ldo, inv); break;
        default: values_rows(1, d, s, kp, v, ldkv, last, o, ldo, inv); break;
        }
    }
}
#endif

int myelin_attention_forward_rows(long queries, long keys, long d, float scale, const float *q, long ldq,
                                  const float *k, const float *v, long ldkv, const float *mask, long maskRow,
                                  long maskCol, int causal, float *out, long ldo, float *lse, long i0, long i1,
                                  float *scratch) {
#if defined(__x86_64__)
    if (!myelin_sgemm_available() || d <= 0 || d % 8 != 0) return 0;
    if (i1 > i0) {
        attention_rows_avx2(queries, keys, d, scale, q, ldq, k, v, ldkv, mask, maskRow, maskCol, causal, out, ldo, lse,
                            i0, i1, scratch);
    }
    return 1;
#else
    (void)queries; (void)keys; (void)d; (void)scale; (void)q; (void)ldq; (void)k; (void)v; (void)ldkv; (void)mask;
    (void)maskRow; (void)maskCol; (void)causal; (void)out; (void)ldo; (void)lse; (void)i0; (void)i1; (void)scratch;
    return 0;
#endif
}
