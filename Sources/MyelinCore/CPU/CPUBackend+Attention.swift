internal import CMyelinMath
import CBLAS
import Foundation

/// The fused attention on the CPU (see `SequenceBackend`): blocked loops with the online softmax, whose products
/// (a block of scores, the probabilities times a block of values, the gradients) are small GEMMs on the calling
/// thread. The forward runs (group, query block) pairs in parallel; the backward runs groups (b, h) in parallel, each
/// accumulating its own gk and gv, so no two threads write the same element.
extension CPUBackend {
    /// Query rows and keys per block: a 64 × 64 block of scores (16 KiB) stays in the L1/L2 cache. Causal
    /// attention takes 32: the blocks above the diagonal are skipped, so a 64-token window computes 3 of its 4
    /// quarters (a GPT step at T = 64 spent about 15% of its time in the attention).
    static func attentionBlock(_ s: AttentionShape) -> Int { s.causal ? 32 : 64 }

    /// C [m, n] = alpha · op(A) · op(B) + beta · C on the calling thread (row-major, op = transposed when asked).
    private func blockGemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                           _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
                           _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        if Self.ownGemmAvailable && Self.gemmChoice != .blas {
            myelin_sgemm_block(transA ? 1 : 0, transB ? 1 : 0, k, alpha, a, lda, b, ldb, beta, c, ldc, nil, 0, 0, m, 0, n)
        } else {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }

    /// Whether the forward runs on the row kernel (`myelin_attention_forward_rows`): a CPU with AVX2 and FMA (the
    /// own kernel's test), a head size that is a multiple of 8, and up to 4096 keys (its scratch holds a [d, keys]
    /// panel); `MYELIN_CPU_GEMM=blas` keeps the blocked path, as for every other product.
    static func rowAttentionApplies(_ s: AttentionShape) -> Bool {
        ownGemmAvailable && gemmChoice != .blas && s.headSize % 8 == 0 && s.keys <= 4096
    }

    /// The minimum for `parallelFor` over `units`: all of them on the calling thread when the whole call is small.
    private func attentionMinimum(_ s: AttentionShape, units: Int) -> Int {
        s.groups * s.queries * s.keys * s.headSize < CPUBackend.parallelThreshold * 16 ? units + 1 : 1
    }

    /// Row r of a block of scores (keys j0 ..< j0 + cols of query i) with the mask added and the keys query i does
    /// not see set to −∞.
    private func maskScores(_ s: AttentionShape, _ row: UnsafeMutablePointer<Float>, cols: Int, mask: UnsafePointer<Float>?,
                            group g: Int, query i: Int, firstKey j0: Int) {
        let visible = s.visibleKeys(i) - j0
        if visible < cols { for c in Swift.max(visible, 0)..<cols { row[c] = -.infinity } }
        guard let mask, visible > 0 else { return }
        let m = mask + s.maskRow(group: g, query: i) + j0 * s.maskStrides[3], step = s.maskStrides[3]
        for c in 0..<Swift.min(visible, cols) { row[c] += m[c * step] }
    }

    func attentionForward(_ shape: AttentionShape, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, mask: DeviceBuffer?,
                          out: DeviceBuffer, lse: DeviceBuffer) {
        guard allocated("attentionForward", q, k, v, mask, out, lse) else { return }
        let s = shape, d = s.headSize, tq = s.queries, tk = s.keys, block = Self.attentionBlock(shape)
        let ld = s.rowStride, ldo = s.outRowStride
        let pq = q.host!, pk = k.host!, pv = v.host!, pm = mask.map { UnsafePointer($0.host!) }, po = out.host!, pl = lse.host!
        if let lengths = s.sequenceLengths {
            attentionForwardSequences(s, lengths: lengths, qkv: pq, out: po, lse: pl)
            return
        }
        let blocks = (tq + block - 1) / block, units = s.groups * blocks
        guard units > 0, d > 0 else { return }
        if Self.rowAttentionApplies(s) {
            // Whole rows of scores against a transposed key panel (myelin_attention.c): a BERT batch's short
            // sequences ran 2-4× faster than through the blocks' small GEMMs and their packing.
            onRowKernel(s, units: units) { unit, scratch in
                let g = unit / blocks, i0 = (unit % blocks) * block, i1 = Swift.min(tq, i0 + block)
                return myelin_attention_forward_rows(
                    tq, tk, d, s.scale, pq + s.inputBase(group: g, part: 0, positions: tq), ld,
                    pk + s.inputBase(group: g, part: 1, positions: tk), pv + s.inputBase(group: g, part: 2, positions: tk),
                    ld, pm.map { $0 + s.maskRow(group: g, query: 0) }, s.maskStrides[2], s.maskStrides[3],
                    s.causal ? 1 : 0, po + s.outBase(group: g), ldo, pl + g * tq, i0, i1, scratch)
            }
            return
        }
        parallelFor(units, minimum: attentionMinimum(s, units: units)) { lo, hi in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: block * block)
            defer { scores.deallocate() }
            var m = [Float](repeating: 0, count: block), l = [Float](repeating: 0, count: block)
            for unit in lo..<hi {
                let g = unit / blocks, i0 = (unit % blocks) * block, rows = Swift.min(block, tq - i0)
                let qb = pq + s.inputBase(group: g, part: 0, positions: tq) + i0 * ld
                let ob = po + s.outBase(group: g) + i0 * ldo
                let kg = pk + s.inputBase(group: g, part: 1, positions: tk), vg = pv + s.inputBase(group: g, part: 2, positions: tk)
                for r in 0..<rows { (ob + r * ldo).update(repeating: 0, count: d) }
                for r in 0..<rows { m[r] = -.infinity; l[r] = 0 }
                let end = s.visibleKeys(i0 + rows - 1)
                var j0 = 0
                while j0 < end {
                    let cols = Swift.min(block, end - j0)
                    blockGemm(false, true, rows, cols, d, s.scale, qb, ld, kg + j0 * ld, ld, 0, scores, block)
                    for r in 0..<rows {
                        let row = scores + r * block
                        maskScores(s, row, cols: cols, mask: pm, group: g, query: i0 + r, firstKey: j0)
                        var bm = m[r]
                        for c in 0..<cols { bm = Swift.max(bm, row[c]) }
                        // While every key so far is masked (bm = −∞) nothing is added.
                        let corr: Float = bm == -.infinity ? 1 : Foundation.exp(m[r] - bm)
                        let sum: Float
                        if bm == -.infinity {
                            row.update(repeating: 0, count: cols); sum = 0
                        } else {
                            sum = myelin_exp_shifted(row, cols, bm)   // vectorized exp(row[c] − bm), and their sum
                        }
                        l[r] = l[r] * corr + sum; m[r] = bm
                        if corr != 1 { let o = ob + r * ldo; for c in 0..<d { o[c] *= corr } }
                    }
                    blockGemm(false, false, rows, d, cols, 1, scores, block, vg + j0 * ld, ld, 1, ob, ldo)
                    j0 += cols
                }
                for r in 0..<rows {
                    // Every key masked: 0 · ∞, NaN, as the softmax of such a row.
                    let inv = 1 / l[r], o = ob + r * ldo
                    for c in 0..<d { o[c] *= inv }
                    pl[g * tq + i0 + r] = m[r] + Foundation.log(l[r])
                }
            }
        }
        count { $0.launches += 1 }
    }

    /// The forward of `AttentionShape.sequenceLengths` on the row kernel (the caller checked `rowAttentionApplies`):
    /// one unit per (sequence, head, block of query rows), reading the sequence's rows of the [N, 3C] input in place.
    private func attentionForwardSequences(_ s: AttentionShape, lengths: [Int], qkv: UnsafeMutablePointer<Float>,
                                           out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>) {
        precondition(Self.rowAttentionApplies(s), "attentionForward: sequences of different lengths need the row kernel")
        let d = s.headSize, heads = s.heads, c = heads * d, block = Self.attentionBlock(s)
        var starts: [Int] = [], units: [(sequence: Int, head: Int, row: Int)] = [], total = 0
        for (sequence, length) in lengths.enumerated() {
            starts.append(total)
            total += length
            for head in 0..<heads { for row in stride(from: 0, to: length, by: block) { units.append((sequence, head, row)) } }
        }
        guard !units.isEmpty else { return }
        onRowKernel(s, units: units.count) { index, scratch in
            let unit = units[index], length = lengths[unit.sequence], first = starts[unit.sequence]
            let q = qkv + first * 3 * c + unit.head * d
            return myelin_attention_forward_rows(
                length, length, d, s.scale, q, 3 * c, q + c, q + 2 * c, 3 * c, nil, 0, 0, 0,
                out + first * c + unit.head * d, c, lse + first * heads + unit.head * length,
                unit.row, Swift.min(length, unit.row + block), scratch)
        }
    }

    /// Runs `unit(index, scratch)` (a call of `myelin_attention_forward_rows`) for every index in 0..<units across
    /// the threads, each chunk with a scratch of `myelin_attention_scratch` floats for `s.keys` keys.
    private func onRowKernel(_ s: AttentionShape, units: Int, _ unit: (Int, UnsafeMutablePointer<Float>) -> Int32) {
        let scratchCount = myelin_attention_scratch(s.keys, s.headSize)
        parallelFor(units, minimum: attentionMinimum(s, units: units)) { lo, hi in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
            defer { scratch.deallocate() }
            for index in lo..<hi {
                precondition(unit(index, scratch) == 1, "attentionForward: the row kernel refused a shape it was chosen for")
            }
        }
        count { $0.launches += 1 }
    }

    func attentionBackward(_ shape: AttentionShape, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, mask: DeviceBuffer?,
                           out: DeviceBuffer, lse: DeviceBuffer, gOut: DeviceBuffer, delta: DeviceBuffer,
                           gq: DeviceBuffer, gk: DeviceBuffer, gv: DeviceBuffer) {
        guard allocated("attentionBackward", q, k, v, mask, out, lse),
              allocated("attentionBackward", gOut, delta, gq, gk, gv) else { return }
        let s = shape, d = s.headSize, tq = s.queries, tk = s.keys, block = Self.attentionBlock(shape)
        let ld = s.rowStride, ldo = s.outRowStride
        let pq = q.host!, pk = k.host!, pv = v.host!, pm = mask.map { UnsafePointer($0.host!) }, po = out.host!
        let pl = lse.host!, pgo = gOut.host!, pd = delta.host!, pgq = gq.host!, pgk = gk.host!, pgv = gv.host!
        guard s.groups > 0, d > 0, tk > 0 else { return }
        parallelFor(s.groups, minimum: attentionMinimum(s, units: s.groups)) { lo, hi in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: block * block)
            let dp = UnsafeMutablePointer<Float>.allocate(capacity: block * block)
            defer { p.deallocate(); dp.deallocate() }
            for g in lo..<hi {
                let qBase = s.inputBase(group: g, part: 0, positions: tq), kBase = s.inputBase(group: g, part: 1, positions: tk)
                let vBase = s.inputBase(group: g, part: 2, positions: tk), oBase = s.outBase(group: g)
                let qg = pq + qBase, kg = pk + kBase, vg = pv + vBase, og = po + oBase, gog = pgo + oBase
                let gqg = pgq + qBase, gkg = pgk + kBase, gvg = pgv + vBase
                let lg = pl + g * tq, dg = pd + g * tq
                for i in 0..<tq {
                    var sum: Float = 0
                    for c in 0..<d { sum += gog[i * ldo + c] * og[i * ldo + c] }
                    dg[i] = sum
                    (gqg + i * ld).update(repeating: 0, count: d)
                }
                for j in 0..<tk { (gkg + j * ld).update(repeating: 0, count: d); (gvg + j * ld).update(repeating: 0, count: d) }
                var i0 = 0
                while i0 < tq {
                    let rows = Swift.min(block, tq - i0), end = s.visibleKeys(i0 + rows - 1)
                    var j0 = 0
                    while j0 < end {
                        let cols = Swift.min(block, end - j0)
                        blockGemm(false, true, rows, cols, d, s.scale, qg + i0 * ld, ld, kg + j0 * ld, ld, 0, p, block)
                        blockGemm(false, true, rows, cols, d, 1, gog + i0 * ldo, ldo, vg + j0 * ld, ld, 0, dp, block)
                        for r in 0..<rows {
                            let prow = p + r * block, dprow = dp + r * block, li = lg[i0 + r], di = dg[i0 + r]
                            maskScores(s, prow, cols: cols, mask: pm, group: g, query: i0 + r, firstKey: j0)
                            _ = myelin_exp_shifted(prow, cols, li)   // the probabilities exp(score − lse), vectorized
                            for c in 0..<cols { dprow[c] = prow[c] * (dprow[c] - di) }
                        }
                        blockGemm(true, false, cols, d, rows, 1, p, block, gog + i0 * ldo, ldo, 1, gvg + j0 * ld, ld)
                        blockGemm(false, false, rows, d, cols, s.scale, dp, block, kg + j0 * ld, ld, 1, gqg + i0 * ld, ld)
                        blockGemm(true, false, cols, d, rows, s.scale, dp, block, qg + i0 * ld, ld, 1, gkg + j0 * ld, ld)
                        j0 += cols
                    }
                    i0 += rows
                }
            }
        }
        count { $0.launches += 1 }
    }
}
