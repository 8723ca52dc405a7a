/// A step's optimizer updates in few launches where `groupsOptimizerUpdates` (GPUs): the Adam updates that share
/// their hyperparameters go 8 per launch of `adam_multi_step` (Kernels/optimizers.cl), the same arithmetic as
/// `adam_step` element by element; a group of one, the other optimizers, and every update elsewhere (PoCL) launch
/// per parameter as `optimizerStep` does.
extension OpenCLBackend {
    /// The tensors one `adam_multi_step` launch updates.
    static let multiTensorWidth = 8

    /// One Adam tensor of a multi-tensor launch.
    private struct AdamTensor {
        let param: DeviceBuffer, grad: DeviceBuffer, expAvg: DeviceBuffer, expAvgSq: DeviceBuffer
        let maxExpAvgSq: DeviceBuffer?
        let count: Int
    }

    func optimizerSteps(_ updates: [OptimizerUpdate]) {
        if groupsOptimizerUpdates { optimizerSteps(updates, items: nil) } else { optimizerStepsOneByOne(updates) }
    }

    /// `optimizerSteps` grouped whatever the device, with `items` work-items per multi-tensor launch (tests force
    /// few, so that each work-item walks several rounds); nil picks them from the tensors' sizes.
    func optimizerSteps(_ updates: [OptimizerUpdate], items: Int?) {
        var groups: [(hyper: AdamStepParameters, tensors: [AdamTensor])] = []
        for u in updates where u.count > 0 {
            guard case .adam(let h, let m, let v, let mx) = u.step, !h.amsgrad || mx != nil else {
                optimizerStep(u.step, param: u.param, grad: u.grad, count: u.count)
                continue
            }
            let t = AdamTensor(param: u.param, grad: u.grad, expAvg: m, expAvgSq: v, maxExpAvgSq: h.amsgrad ? mx : nil,
                               count: u.count)
            if let g = groups.firstIndex(where: { $0.hyper == h }) { groups[g].tensors.append(t) } else { groups.append((h, [t])) }
        }
        for (h, tensors) in groups {
            for start in stride(from: 0, to: tensors.count, by: Self.multiTensorWidth) {
                let chunk = Array(tensors[start..<min(start + Self.multiTensorWidth, tensors.count)])
                if chunk.count == 1 {
                    let t = chunk[0]
                    adam(param: t.param, grad: t.grad, expAvg: t.expAvg, expAvgSq: t.expAvgSq, maxExpAvgSq: t.maxExpAvgSq,
                         count: t.count, h)
                } else {
                    adamMulti(chunk, h, items: items)
                }
            }
        }
    }

    /// One `adam_multi_step` launch over 2 to 8 tensors: G work-items (a multiple of the work-group size: `items`,
    /// or the largest tensor, at most 2^16, rounded up), each walking every tensor with stride G.
    private func adamMulti(_ tensors: [AdamTensor], _ h: AdamStepParameters, items: Int?) {
        let name = h.amsgrad ? "adam_amsgrad_multi_step" : "adam_multi_step"
        var args: [KernelArg] = []
        for k in 0..<Self.multiTensorWidth {
            if k < tensors.count {
                let t = tensors[k]
                args += [.buffer(t.param), .buffer(t.grad), .buffer(t.expAvg), .buffer(t.expAvgSq),
                         t.maxExpAvgSq.map { .buffer($0) } ?? .null, .int(Int32(clamping: t.count))]
            } else {
                args += [.null, .null, .null, .null, .null, .int(0)]
            }
        }
        let (decay, l2) = Self.decay(lr: h.learningRate, weightDecay: h.weightDecay, decoupled: h.decoupled)
        args += [.float(decay), .float(l2), .float(h.beta1), .float(h.beta2), .float(h.eps), .float(h.stepSize),
                 .float(h.biasCorrection2Sqrt), .int(h.first ? 1 : 0)]
        let local = fittingLocal([64], .optimizers, name)[0]
        let largest = items ?? min(tensors.map(\.count).max()!, 1 << 16)
        launch(.optimizers, name, global: [(largest + local - 1) / local * local], local: [local], args: args)
    }
}
