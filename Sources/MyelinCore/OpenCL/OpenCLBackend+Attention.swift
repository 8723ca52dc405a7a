import Foundation

/// The fused attention as launches of Kernels/attention.cl: `attention_forward` (one launch), then for the backward
/// `attention_backward_query` (delta and gq, one work-item per query row) and `attention_backward_kv` (gk and gv, one
/// work-item per key row); see `SequenceBackend`.
extension OpenCLBackend {
    /// The sizes every attention kernel takes after its buffers.
    private func attentionSizes(_ s: AttentionShape) -> [KernelArg] {
        [.int(Int32(clamping: s.groups)), .int(Int32(clamping: s.heads)), .int(Int32(clamping: s.queries)), .int(Int32(clamping: s.keys)),
         .int(Int32(clamping: s.headSize)), .float(s.scale), .int(s.causal ? 1 : 0)] + s.maskStrides.map { .int(Int32(clamping: $0)) }
    }

    func attentionForward(_ shape: AttentionShape, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, mask: DeviceBuffer?,
                          out: DeviceBuffer, lse: DeviceBuffer) {
        precondition(shape.sequenceLengths == nil, "attentionForward: sequences of different lengths are a CPU layout")
        guard shape.groups > 0, shape.queries > 0, shape.headSize > 0 else { return }
        launch(.attention, "attention_forward", global: [shape.queries, shape.groups],
               args: [.buffer(q), .buffer(k), .buffer(v), mask.map { .buffer($0) } ?? .null, .buffer(out), .buffer(lse)]
                   + attentionSizes(shape))
    }

    func attentionBackward(_ shape: AttentionShape, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, mask: DeviceBuffer?,
                           out: DeviceBuffer, lse: DeviceBuffer, gOut: DeviceBuffer, delta: DeviceBuffer,
                           gq: DeviceBuffer, gk: DeviceBuffer, gv: DeviceBuffer) {
        guard shape.groups > 0, shape.queries > 0, shape.keys > 0, shape.headSize > 0 else { return }
        let m: KernelArg = mask.map { .buffer($0) } ?? .null
        launch(.attention, "attention_backward_query", global: [shape.queries, shape.groups],
               args: [.buffer(q), .buffer(k), .buffer(v), m, .buffer(out), .buffer(lse), .buffer(gOut), .buffer(delta),
                      .buffer(gq)] + attentionSizes(shape))
        launch(.attention, "attention_backward_kv", global: [shape.keys, shape.groups],
               args: [.buffer(q), .buffer(k), .buffer(v), m, .buffer(lse), .buffer(gOut), .buffer(delta), .buffer(gk),
                      .buffer(gv)] + attentionSizes(shape))
    }
}
