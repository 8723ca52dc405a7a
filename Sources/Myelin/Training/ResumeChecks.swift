import Foundation

// Checks that make a resumed run trustworthy: the optimizer state of a checkpoint (its precision and the
// relations its moments must keep), and the first epoch of a resumed run against the loss the checkpoint's
// history ends at.

extension TrainingCheckpoint {
    /// Slots that hold running means or sums of squared gradients (`exp_avg_sq`, `max_exp_avg_sq` of Adam/AdamW,
    /// `square_avg` of RMSProp, `sum` of Adagrad): never negative, never NaN or infinite.
    static let secondMomentSlots: Set<String> = ["exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum"]

    /// A first-moment slot and the second-moment slot made from the same gradients. A second moment of exactly 0
    /// means every gradient it saw was 0 (or squared below Float's smallest value), so its first moment is 0 or tiny
    /// too: for Adam with β₁² < β₂ (every usual setting), m² ≤ (1-β₁)²/((1-β₂)(1-β₁²/β₂))·v, which keeps |m| below
    /// 1e-18 while v is 0 even below the smallest normal Float (a device flushing subnormals to 0); RMSProp's centered
    /// mean obeys g² ≤ v.
    static let momentPairs: [(first: String, second: String)] = [("exp_avg", "exp_avg_sq"), ("grad_avg", "square_avg")]

    /// The largest |first moment| accepted where the second moment is exactly 0 (see `momentPairs`).
    public static let zeroSecondMomentTolerance: Float = 1e-15

    /// Refuses optimizer state that cannot resume correctly, before anything is loaded: a tensor stored narrower
    /// than F32 (F16 or BF16 flush small second moments to 0, and Adam then steps by lr·m/ε: a run that diverges
    /// without tripping any check), a negative (or, unless `allowNonFinite`, non-finite) second moment, a second
    /// moment of exactly 0 where its first moment is not about 0, and an AMSGrad maximum below the second moment it
    /// bounds. Errors name the file, the tensor, the element and the values.
    static func checkOptimizerState(_ entries: [SafeTensorsEntry], source: String, allowNonFinite: Bool) throws {
        var state: [String: SafeTensorsEntry] = [:]
        for e in entries where e.name.hasPrefix(optimizerPrefix) {
            if (SafeTensors.elementSizes[e.dtype] ?? 4) < 4 {
                throw CheckpointError.invalid(source, reason: "optimizer state '\(e.name)' is stored as \(e.dtype), narrower than F32; "
                    + "resuming from it is refused (half precision flushes small second moments to 0, and Adam then steps by "
                    + "lr·m/ε). Save the optimizer state as F32, or start a fresh optimizer from the weights alone (Layer.load(from:))")
            }
            state[String(e.name.dropFirst(optimizerPrefix.count))] = e
        }
        func refuse(_ e: SafeTensorsEntry, _ why: String) -> CheckpointError {
            .invalid(source, reason: "optimizer state '\(e.name)' \(why); the state is inconsistent, so resuming from it is refused")
        }
        for (key, e) in state {
            guard let slot = key.split(separator: ".", maxSplits: 1).last, secondMomentSlots.contains(String(slot)) else { continue }
            if let i = e.values.firstIndex(where: { $0 < 0 || (!allowNonFinite && !$0.isFinite) }) {
                throw refuse(e, "holds \(e.values[i]) at element \(i): a second moment is a mean of squared gradients, never negative, NaN or infinite")
            }
        }
        for (key, first) in state {
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            for pair in momentPairs where pair.first == parts[1] {
                guard let second = state["\(parts[0]).\(pair.second)"], second.values.count == first.values.count else { continue }
                if let i = first.values.indices.first(where: { second.values[$0] == 0 && Swift.abs(first.values[$0]) > zeroSecondMomentTolerance }) {
                    throw refuse(second, "is 0 at element \(i) where '\(first.name)' is \(first.values[i]): a second moment of 0 "
                                 + "means every gradient was 0, so the first moment must be 0 too (a sign of state stored in half precision)")
                }
            }
            if parts[1] == "max_exp_avg_sq", let v = state["\(parts[0]).exp_avg_sq"], v.values.count == first.values.count,
               let i = first.values.indices.first(where: { first.values[$0] < v.values[$0] }) {
                throw refuse(first, "is \(first.values[i]) at element \(i), below '\(v.name)' (\(v.values[i])), whose running maximum it is")
            }
        }
    }

    /// How far a resumed run's first epoch loss may be from the loss the checkpoint's history ends at before `fit`
    /// warns: more than `factor` times it, plus `slack` (a tiny loss may double by noise alone). Training rarely
    /// raises its loss from one epoch to the next; resuming into wrong state (another data set, a changed model,
    /// damaged optimizer moments) usually raises it by far more than 2x.
    public static let resumeLossFactor = 2.0
    /// The absolute part of the bound (see `resumeLossFactor`).
    public static let resumeLossSlack = 0.05

    /// The warning for a resumed run whose first epoch loss `resumed` is far above `previous`, the last loss of the
    /// history it resumes (`resumed > resumeLossFactor · previous + resumeLossSlack`, or not finite); nil when it
    /// continues as expected.
    ///
    /// ```swift
    /// TrainingCheckpoint.resumeWarning(epoch: 4, previous: 0.31, resumed: 0.29)   // nil
    /// TrainingCheckpoint.resumeWarning(epoch: 4, previous: 0.31, resumed: 466)    // "warning: ..."
    /// ```
    public static func resumeWarning(epoch: Int, previous: Double, resumed: Double) -> String? {
        guard previous.isFinite, !(resumed <= resumeLossFactor * previous + resumeLossSlack) else { return nil }
        return "warning: the loss of epoch \(epoch), the first after resuming, is " + String(format: "%.4g", resumed)
            + ", far above the " + String(format: "%.4g", previous) + " the resumed history ends at (more than "
            + String(format: "%g", resumeLossFactor) + "x + " + String(format: "%g", resumeLossSlack) + "): check that the "
            + "checkpoint belongs to this model, data and optimizer, and that its optimizer state is sound"
    }
}
