#ifndef MYELIN_ATTENTION_H
#define MYELIN_ATTENTION_H
// The forward of the CPU's fused attention for one (batch, head) group and a block of query rows, as AVX2+FMA
// vectors: the keys are copied once per call as a transposed, zero-padded [d, keys] panel, then every 4 query rows
// get their whole row of scores (8-wide FMAs over the panel), the mask, the softmax (myelin_exp_shifted) and the
// product with the values (8-wide FMAs over the value rows). Short sequences (a BERT batch's 10-70 tokens) spent
// more time packing and calling small GEMMs than multiplying on the blocked path.

/// The scratch floats myelin_attention_forward_rows needs for `keys` keys of head size `d`.
long myelin_attention_scratch(long keys, long d);

/// For query rows i in [i0, i1) of one group: out[i] = softmax(scale · q_i · Kᵀ + mask_i) · V over the keys query i
/// sees (all `keys`, or with `causal` the first i + keys − queries + 1), and lse[i] = the log of the softmax's
/// denominator (max + log(sum)), as the blocked path writes them. Row i of q is q + i·ldq, row j of k and v is
/// k + j·ldkv and v + j·ldkv, row i of out is out + i·ldo; lse is indexed by i. When `mask` is not null, mask[i·maskRow
/// + j·maskCol] is added to score (i, j). A row whose keys are all masked gives NaN (0 · ∞), as the blocked path.
/// Returns 0, having done nothing, where the CPU lacks AVX2+FMA or d is not a multiple of 8; else 1. `scratch` holds
/// myelin_attention_scratch(keys, d) floats.
int myelin_attention_forward_rows(long queries, long keys, long d, float scale, const float *q, long ldq,
                                  const float *k, const float *v, long ldkv, const float *mask, long maskRow,
                                  long maskCol, int causal, float *out, long ldo, float *lse, long i0, long i1,
                                  float *scratch);
#endif
