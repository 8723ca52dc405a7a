// Fused scaled dot-product attention, FlashAttention style: an online softmax over the keys (a running maximum and
// sum per query row), so no [queries, keys] matrix is ever stored; the forward keeps each row's log-sum-exp, and the
// backward recomputes the probabilities from q, k and it.
//
// Layout: q [G, tq, d], k and v [G, tk, d] with G = batch * heads (group g = b * heads + h), row-major. The optional
// additive mask is read at mask[b * msb + h * msh + i * msq + j * msk] (strides 0 where it broadcasts). Causal: query
// i sees keys 0 .. i + tk - tq (aligned to the last key, as a decoder with a key/value cache needs).
// Each work-item owns one row (a query row forward and for dq, a key row for dk/dv), so no two items write the same
// element. It accumulates ATT_CHUNK head dimensions at a time in private memory (one pass when d <= ATT_CHUNK).

#define ATT_CHUNK 64
#define ATT_KEYS 16

// a . b over d elements, four at a time (vload4 needs only float alignment).
inline float att_dot(__global const float* a, __global const float* b, int d) {
    float4 s4 = (float4)(0.0f);
    int c = 0;
    for (; c + 4 <= d; c += 4) s4 += vload4(0, a + c) * vload4(0, b + c);
    float s = (s4.x + s4.y) + (s4.z + s4.w);
    for (; c < d; ++c) s += a[c] * b[c];
    return s;
}

// acc[0..n) += f * x[0..n), four at a time.
inline void att_axpy(float* acc, float f, __global const float* x, int n) {
    int c = 0;
    for (; c + 4 <= n; c += 4) vstore4(vload4(0, acc + c) + f * vload4(0, x + c), 0, acc + c);
    for (; c < n; ++c) acc[c] += f * x[c];
}

// The mask row of query i in group g (its key 0), or 0 without a mask.
inline __global const float* att_mask_row(__global const float* mask, int g, int heads, int i, int msb, int msh,
                                          int msq) {
    return mask ? mask + (long)(g / heads) * msb + (long)(g % heads) * msh + (long)i * msq : 0;
}

// out[g, i] = softmax_j(scale * q_i . k_j + mask) v_j and lse[g, i] = the log of that softmax's denominator (with the
// row maximum added back). One work-item per (i, g): global [tq, G].
__kernel void attention_forward(__global const float* q, __global const float* k, __global const float* v,
                                __global const float* mask, __global float* out, __global float* lse, int groups,
                                int heads, int tq, int tk, int d, float scale, int causal, int msb, int msh, int msq,
                                int msk) {
    int i = get_global_id(0), g = get_global_id(1);
    if (i >= tq || g >= groups) return;
    long row = (long)g * tq + i;
    __global const float* qi = q + row * d;
    __global const float* kg = k + (long)g * tk * d;
    __global const float* vg = v + (long)g * tk * d;
    __global const float* mrow = att_mask_row(mask, g, heads, i, msb, msh, msq);
    int keys = causal ? min(tk, i + tk - tq + 1) : tk;
    float m = -INFINITY, l = 0.0f;
    for (int d0 = 0; d0 < d; d0 += ATT_CHUNK) {
        int dn = min(ATT_CHUNK, d - d0);
        float acc[ATT_CHUNK];
        for (int c = 0; c < ATT_CHUNK; ++c) acc[c] = 0.0f;
        m = -INFINITY;
        l = 0.0f;
        for (int j0 = 0; j0 < keys; j0 += ATT_KEYS) {
            int jn = min(ATT_KEYS, keys - j0);
            float s[ATT_KEYS];
            float bm = m;
            for (int jj = 0; jj < jn; ++jj) {
                int j = j0 + jj;
                float x = att_dot(qi, kg + (long)j * d, d) * scale + (mrow ? mrow[(long)j * msk] : 0.0f);
                s[jj] = x;
                bm = fmax(bm, x);
            }
            // While every key so far is masked (bm = -inf) nothing is added.
            float corr = bm == -INFINITY ? 1.0f : exp(m - bm);
            l *= corr;
            for (int c = 0; c < dn; ++c) acc[c] *= corr;
            for (int jj = 0; jj < jn; ++jj) {
                float p = bm == -INFINITY ? 0.0f : exp(s[jj] - bm);
                l += p;
                __global const float* vj = vg + (long)(j0 + jj) * d + d0;
                att_axpy(acc, p, vj, dn);
            }
            m = bm;
        }
        // Every key masked: 0 / 0, NaN, as the softmax of such a row.
        for (int c = 0; c < dn; ++c) out[row * d + d0 + c] = acc[c] / l;
    }
    lse[row] = m + log(l);
}

// The backward for the queries: delta[g, i] = gout_i . out_i (kept for attention_backward_kv), and
// gq_i = scale * sum_j p_ij (gout_i . v_j - delta_i) k_j with p_ij = exp(scale * q_i . k_j + mask - lse_i).
// One work-item per (i, g): global [tq, G].
__kernel void attention_backward_query(__global const float* q, __global const float* k, __global const float* v,
                                       __global const float* mask, __global const float* out,
                                       __global const float* lse, __global const float* gout, __global float* delta,
                                       __global float* gq, int groups, int heads, int tq, int tk, int d, float scale,
                                       int causal, int msb, int msh, int msq, int msk) {
    int i = get_global_id(0), g = get_global_id(1);
    if (i >= tq || g >= groups) return;
    long row = (long)g * tq + i;
    __global const float* qi = q + row * d;
    __global const float* gi = gout + row * d;
    __global const float* kg = k + (long)g * tk * d;
    __global const float* vg = v + (long)g * tk * d;
    __global const float* mrow = att_mask_row(mask, g, heads, i, msb, msh, msq);
    int keys = causal ? min(tk, i + tk - tq + 1) : tk;
    float di = att_dot(gi, out + row * d, d), li = lse[row];
    delta[row] = di;
    for (int d0 = 0; d0 < d; d0 += ATT_CHUNK) {
        int dn = min(ATT_CHUNK, d - d0);
        float acc[ATT_CHUNK];
        for (int c = 0; c < ATT_CHUNK; ++c) acc[c] = 0.0f;
        for (int j = 0; j < keys; ++j) {
            __global const float* kj = kg + (long)j * d;
            float x = att_dot(qi, kj, d) * scale + (mrow ? mrow[(long)j * msk] : 0.0f);
            float ds = exp(x - li) * (att_dot(gi, vg + (long)j * d, d) - di);
            att_axpy(acc, ds, kj + d0, dn);
        }
        for (int c = 0; c < dn; ++c) gq[row * d + d0 + c] = acc[c] * scale;
    }
}

// The backward for the keys and values, after attention_backward_query (it reads delta):
// gv_j = sum_i p_ij gout_i and gk_j = scale * sum_i p_ij (gout_i . v_j - delta_i) q_i, over the queries that see key j.
// One work-item per (j, g): global [tk, G].
__kernel void attention_backward_kv(__global const float* q, __global const float* k, __global const float* v,
                                    __global const float* mask, __global const float* lse, __global const float* gout,
                                    __global const float* delta, __global float* gk, __global float* gv, int groups,
                                    int heads, int tq, int tk, int d, float scale, int causal, int msb, int msh,
                                    int msq, int msk) {
    int j = get_global_id(0), g = get_global_id(1);
    if (j >= tk || g >= groups) return;
    long krow = (long)g * tk + j;
    __global const float* kj = k + krow * d;
    __global const float* vj = v + krow * d;
    int first = causal ? max(0, j - (tk - tq)) : 0;
    for (int d0 = 0; d0 < d; d0 += ATT_CHUNK) {
        int dn = min(ATT_CHUNK, d - d0);
        float ak[ATT_CHUNK], av[ATT_CHUNK];
        for (int c = 0; c < ATT_CHUNK; ++c) { ak[c] = 0.0f; av[c] = 0.0f; }
        for (int i = first; i < tq; ++i) {
            long row = (long)g * tq + i;
            __global const float* qi = q + row * d;
            __global const float* gi = gout + row * d;
            __global const float* mrow = att_mask_row(mask, g, heads, i, msb, msh, msq);
            float x = att_dot(qi, kj, d) * scale + (mrow ? mrow[(long)j * msk] : 0.0f);
            float p = exp(x - lse[row]);
            float ds = p * (att_dot(gi, vj, d) - delta[row]);
            att_axpy(av, p, gi + d0, dn);
            att_axpy(ak, ds, qi + d0, dn);
        }
        for (int c = 0; c < dn; ++c) {
            gk[krow * d + d0 + c] = ak[c] * scale;
            gv[krow * d + d0 + c] = av[c];
        }
    }
}
