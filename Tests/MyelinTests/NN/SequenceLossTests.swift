import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Cross-entropy over sequences with an ignored label, against a Double reference and finite differences.
@Suite struct SequenceLossTests {
    /// The mean of −log softmax(row)[label] over the rows whose label is not `ignore`.
    static func reference(_ logits: [Float], _ labels: [Int], classes: Int, ignore: Int) -> Double {
        var total = 0.0, kept = 0
        for (r, label) in labels.enumerated() where label != ignore {
            let row = logits[(r * classes)..<((r + 1) * classes)].map(Double.init)
            let m = row.max()!
            total -= row[label] - m - Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) })
            kept += 1
        }
        return total / Double(kept)
    }

    @Test(arguments: TestDevices.all)
    func crossEntropyWithIgnoreIndex(device: Device) throws {
        let (b, t, classes) = (2, 7, 5)
        let logits = testValues(b * t * classes, seed: 1).map { $0 * 3 }
        for ignore in [-1, 2] {
            var labels = (0..<(b * t)).map { ($0 * 3) % classes }
            labels[3] = ignore; labels[10] = ignore
            let l = try Tensor(labels.map(Float.init), shape: [b, t], on: device)
            let loss = try softmaxCrossEntropy(logits: Tensor(logits, shape: [b, t, classes], on: device), labels: l, ignoreIndex: ignore)
            expectClose([try loss.item()], [Self.reference(logits, labels, classes: classes, ignore: ignore)], rtol: 1e-5, atol: 1e-6,
                        "\(device) cross-entropy, ignoreIndex \(ignore)")
            try gradientCheck(device: device, inputs: [(Array(logits[0..<(4 * classes)]), [2, 2, classes])], "ignoreIndex \(ignore)") {
                try softmaxCrossEntropy(logits: $0[0], labels: Tensor([0, Float(ignore), 4, 1], shape: [2, 2], on: device), ignoreIndex: ignore)
            }
        }
        // With nothing ignored it is the plain mean cross-entropy.
        let labels = try Tensor(labels: [0, 3, 4], classes: classes, on: device)
        let x = try Tensor(Array(logits[0..<15]), shape: [3, classes], on: device)
        expectClose([try softmaxCrossEntropy(logits: x, labels: labels, ignoreIndex: -100).item()],
                    [Double(try softmaxCrossEntropy(logits: x, labels: labels).item())], rtol: 1e-6, atol: 1e-6, "\(device) no ignored label")
        expectError(containing: ["softmaxCrossEntropy(ignoreIndex:)", "[2, 3, 5]", "[3, 2]"]) {
            _ = try softmaxCrossEntropy(logits: Tensor.zeros([2, 3, 5], on: device), labels: Tensor.zeros([2, 3], on: device).reshaped([3, 2]), ignoreIndex: -1)
        }
    }
}
