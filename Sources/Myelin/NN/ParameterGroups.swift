import Foundation

// PyTorch's parameter groups, for the one thing they are most used for: AdamW without weight decay on biases,
// layer norms and embeddings.

/// Parameters that share an optimizer setting (PyTorch's `{"params": [...], "weight_decay": ...}`).
public struct ParameterGroup {
    /// The tensors of the group.
    public var parameters: [Tensor]
    /// The weight decay of this group, or nil for the optimizer's.
    public var weightDecay: Float?

    /// A group of `parameters` with its own `weightDecay` (nil: the optimizer's).
    public init(_ parameters: [Tensor], weightDecay: Float? = nil) {
        self.parameters = parameters
        self.weightDecay = weightDecay
    }
}

extension AdamW {
    /// AdamW over several groups of parameters, each with its own weight decay (nil: `weightDecay`), as
    /// `torch.optim.AdamW([{"params": ..., "weight_decay": ...}, ...])`. State keys number the parameters of all
    /// groups in order.
    ///
    /// ```swift
    /// let optimizer = try AdamW(groups: gpt.parameterGroups(weightDecay: 0.1), learningRate: 1e-3, betas: (0.9, 0.99))
    /// ```
    ///
    /// - Throws: as `init(parameters:...)`, and for a group's negative weight decay.
    public convenience init(groups: [ParameterGroup], learningRate: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999),
                            eps: Float = 1e-8, weightDecay: Float = 0.01, amsgrad: Bool = false) throws {
        for (i, group) in groups.enumerated() {
            if let decay = group.weightDecay {
                try requireHyperparameter(decay >= 0 && decay.isFinite, "AdamW", "groups[\(i)].weightDecay", decay, ">= 0")
            }
        }
        try self.init(parameters: groups.flatMap(\.parameters), learningRate: learningRate, betas: betas, eps: eps,
                      weightDecay: weightDecay, amsgrad: amsgrad)
        for group in groups {
            guard let decay = group.weightDecay else { continue }
            for p in group.parameters { weightDecayOverrides[ObjectIdentifier(p)] = decay }
        }
    }
}

extension Adam {
    /// The weight decay applied to `parameter`: its group's, else `weightDecay`.
    public func weightDecay(for parameter: Tensor) -> Float {
        weightDecayOverrides[ObjectIdentifier(parameter)] ?? weightDecay
    }
}
