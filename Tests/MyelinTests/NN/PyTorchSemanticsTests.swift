import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Places where Myelin once differed silently from PyTorch (issue 28, item 7): a cross-entropy label outside
/// 0..<classes, and `Initializer.array`'s order for a `Dense` weight. (Max pooling's tie rule: MaxPoolOpTests.)
@Suite struct PyTorchSemanticsTests {
    /// PyTorch's `F.cross_entropy` refuses a target outside [0, C); so do both label losses, naming the label, its
    /// position and the class count, on each device.
    @Test(arguments: TestDevices.all)
    func crossEntropyRefusesALabelOutsideTheClasses(device: Device) throws {
        let logits = try Tensor(testValues(4 * 3, seed: 3), shape: [4, 3], on: device)
        for (bad, position) in [(Float(3), 2), (-1, 0), (1.5, 3)] {
            var values: [Float] = [0, 1, 2, 1]
            values[position] = bad
            let labels = try Tensor(values, shape: [4], on: device)
            let shown = bad == bad.rounded() ? String(Int(bad)) : "\(bad)"
            let expected = "label \(shown) at position \(position) is not a whole number in 0..<3"
            for (name, call) in [("softmaxCrossEntropy", { try softmaxCrossEntropy(logits: logits, labels: labels) }),
                                 ("negativeLogLikelihood", { try negativeLogLikelihood(logProbabilities: logits.logSoftmax(), labels: labels) })] {
                do {
                    _ = try call()
                    Issue.record("\(device) \(name): label \(bad) at \(position) was accepted")
                } catch {
                    #expect("\(error)" == "\(name): \(expected)", "\(device)")
                }
            }
        }
        // Good labels still give the loss; a valid tensor is read back once, then marked checked.
        let labels = try Tensor([0, 1, 2, 1], shape: [4], on: device)
        _ = try softmaxCrossEntropy(logits: logits, labels: labels)
        #expect(labels.labelClasses == 3)
    }

    /// Labels checked on the host when made (and batches gathered or copied from them, as `fit` makes them) carry the
    /// check, so the loss needs no read back.
    @Test(arguments: TestDevices.all)
    func checkedLabelsCostNoHostRead(device: Device) throws {
        let data = try Dataset(features: testValues(6 * 2, seed: 1), shape: [6, 2], targets: [0, 1, 2, 2, 1, 0],
                               targetShape: [6], classes: 3, on: device)
        let batch = try data.targets.gather(rows: Tensor([5, 0, 2], on: device))
        let made = try Tensor(labels: [2, 0, 1], classes: 3, on: device).copy()
        let logits = try Tensor(testValues(3 * 3, seed: 2), shape: [3, 3], on: device)
        for labels in [batch, made] {
            // Marked checked, so the loss's check returns before any read (the device's read counter is shared
            // with the tests running beside this one, so the mark is what is checked).
            #expect(labels.labelClasses == 3, "\(device)")
            _ = try softmaxCrossEntropy(logits: logits, labels: labels)
        }
        // Written over in place with unchecked values, a tensor loses its mark.
        made.assign([0, 1, 7])
        #expect(made.labelClasses == nil)
        #expect(throws: TensorError.self) { try softmaxCrossEntropy(logits: logits, labels: made) }
        made.assign(from: batch)
        #expect(made.labelClasses == 3)
        // Labels checked against 3 classes are not trusted for 2.
        let twoClasses = try Tensor(testValues(3 * 2, seed: 4), shape: [3, 2], on: device)
        #expect(throws: TensorError.self) { try softmaxCrossEntropy(logits: twoClasses, labels: made) }
    }

    /// `Initializer.array` takes a dense weight in the stored order [out, in], as PyTorch's `nn.Linear.weight`:
    /// the weight of Dense(3 -> 2) from [1, 2, 3, 4, 5, 6] is [[1, 2, 3], [4, 5, 6]], so x = [1, 0, 0] gives [1, 4].
    @Test(arguments: TestDevices.all)
    func arrayInitializerTakesTheStoredOrder(device: Device) throws {
        let dense = Dense(inputSize: 3, outputSize: 2, weightInit: .array([1, 2, 3, 4, 5, 6]), seed: 1, device: device)
        #expect(dense.weight.shape == [2, 3])
        #expect(try dense.weight.toArray() == [1, 2, 3, 4, 5, 6], "\(device)")
        #expect(try dense(Tensor([1, 0, 0], shape: [1, 3], on: device)).toArray() == [1, 4], "\(device)")
    }
}
