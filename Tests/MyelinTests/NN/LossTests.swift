import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

@Suite struct LossTests {
    static func pairs(_ n: Int, seed: UInt64) -> ([Float], [Float]) {
        (testValues(n, seed: seed), testValues(n, seed: seed + 100))
    }

    @Test(arguments: TestDevices.all)
    func regressionLossesMatchReferencesAndGradients(device: Device) throws {
        for shape in [[1], [7], [3, 5], [129, 1]] {
            let n = shape.reduce(1, *)
            let (pv, tv) = Self.pairs(n, seed: UInt64(n))
            let p = try Tensor(pv, shape: shape, on: device, requiresGrad: true)
            let t = try Tensor(tv, shape: shape, on: device)
            let d = zip(pv, tv).map { Double($0) - Double($1) }
            let delta: Float = 0.3
            let huberRef = d.map { Swift.abs($0) < Double(delta) ? 0.5 * $0 * $0 : Double(delta) * (Swift.abs($0) - 0.5 * Double(delta)) }
            let cases: [(String, (Tensor, Tensor) throws -> Tensor, Double)] = [
                ("meanSquaredError", { try meanSquaredError(predictions: $0, targets: $1) }, d.map { $0 * $0 }.reduce(0, +) / Double(n)),
                ("halfSumOfSquares", { try halfSumOfSquares(predictions: $0, targets: $1) }, 0.5 * d.map { $0 * $0 }.reduce(0, +)),
                ("meanAbsoluteError", { try meanAbsoluteError(predictions: $0, targets: $1) }, d.map { Swift.abs($0) }.reduce(0, +) / Double(n)),
                ("huber", { try huber(predictions: $0, targets: $1, delta: delta) }, huberRef.reduce(0, +) / Double(n)),
            ]
            for (name, loss, expected) in cases {
                let value = try loss(p, t)
                #expect(value.shape == [])
                expectClose([try value.item()], [expected], rtol: 1e-5, atol: 1e-6, "\(device) \(name) \(shape)")
                // Finite differences in Float lose the small shapes' precision on a sum of 129 squares (about 20):
                // that shape checks the squared errors' exact gradients below instead.
                if n <= 15 {
                    try GradientCheck.check([("predictions", p)], eps: 1e-3, "\(device) \(name) \(shape)") { try loss(p, t) }
                }
            }
            // Gradient with respect to the targets as well.
            let tg = try Tensor(tv, shape: shape, on: device, requiresGrad: true)
            if n <= 15 {
                try GradientCheck.check([("p", p), ("t", tg)], eps: 1e-3, "\(device) MSE both") {
                    try meanSquaredError(predictions: p, targets: tg)
                }
                try GradientCheck.check([("p", p), ("t", tg)], eps: 1e-3, "\(device) half sum of squares both") {
                    try halfSumOfSquares(predictions: p, targets: tg)
                }
            }
            // The squared errors are one graph node each; the half sum's gradient is exactly p - t, the mean's
            // exactly (p - t)·(2/n).
            for (name, mean) in [("meanSquaredError", true), ("halfSumOfSquares", false)] {
                p.zeroGrad(); tg.zeroGrad()
                let value = mean ? try meanSquaredError(predictions: p, targets: tg) : try halfSumOfSquares(predictions: p, targets: tg)
                #expect(value.node?.name == name && value.node?.inputs.count == 2, "\(device) \(name) is one node")
                try value.backward()
                let scale: Float = mean ? 2 / Float(n) : 1
                let expected = zip(pv, tv).map { ($0 - $1) * scale }
                #expect(try p.grad!.toArray() == expected, "\(device) \(name) \(shape) gradient")
                #expect(try tg.grad!.toArray() == expected.map { -$0 }, "\(device) \(name) \(shape) target gradient")
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func binaryCrossEntropyFromProbabilitiesAndLogits(device: Device) throws {
        let n = 9
        let logits = testValues(n, seed: 3).map { $0 * 4 }
        let probs = logits.map { 1 / (1 + Foundation.exp(-$0)) }
        let targets: [Float] = (0..<n).map { Float($0 % 2) }
        let sig = logits.map { 1 / (1 + Foundation.exp(-Double($0))) }
        let ref = zip(sig, targets).map { -(Double($1) * Foundation.log($0) + (1 - Double($1)) * Foundation.log(1 - $0)) }
            .reduce(0, +) / Double(n)
        let t = try Tensor(targets, shape: [n, 1], on: device)
        let p = try Tensor(probs, shape: [n, 1], on: device, requiresGrad: true)
        let x = try Tensor(logits, shape: [n, 1], on: device, requiresGrad: true)
        expectClose([try binaryCrossEntropy(probabilities: p, targets: t).item()], [ref], rtol: 1e-4, "\(device) BCE(p)")
        expectClose([try binaryCrossEntropy(logits: x, targets: t).item()], [ref], rtol: 1e-5, "\(device) BCE(logits)")
        try GradientCheck.check([("p", p)], eps: 1e-3, "\(device) BCE(p)") { try binaryCrossEntropy(probabilities: p, targets: t) }
        let soft = try Tensor(testValues(n, seed: 5).map { ($0 + 1) / 2 }, shape: [n, 1], on: device, requiresGrad: true)
        try GradientCheck.check([("x", x), ("t", soft)], eps: 1e-3, "\(device) BCE(logits)") {
            try binaryCrossEntropy(logits: x, targets: soft)
        }
        // Exactly-zero logits get the true gradient (sigmoid(0) - t) / n, not a kink's one-sided value.
        let z = Tensor.zeros([2], on: device); z.requiresGrad = true
        try binaryCrossEntropy(logits: z, targets: Tensor([1, 0], on: device)).backward()
        expectClose(try z.grad!.toArray(), [-0.25, 0.25], "\(device) BCE(logits) at 0")
        // Saturated inputs stay finite.
        let extreme = try Tensor([0, 1, 1000, -1000], shape: [4], on: device)
        let targets4 = try Tensor([1, 0, 0, 1], shape: [4], on: device)
        #expect(try binaryCrossEntropy(probabilities: extreme.clamp(min: 0, max: 1), targets: targets4).item().isFinite)
        expectClose([try binaryCrossEntropy(logits: extreme, targets: targets4).item()],
                    [Self.extremeBCE], rtol: 1e-5,
                    "\(device) BCE(logits) extreme")
    }

    static let extremeBCE: Double = {
        let a: Double = Foundation.log(2.0)
        let b: Double = 1.0 + Foundation.log1p(Foundation.exp(-1.0))
        return (a + b + 2000.0) / 4.0
    }()

    /// Reference softmax cross-entropy of logits [n, c] against labels, in Double.
    static func crossEntropyReference(_ logits: [Float], _ labels: [Int], n: Int, c: Int) -> (loss: Double, grad: [Double]) {
        var loss = 0.0, grad = [Double](repeating: 0, count: n * c)
        for i in 0..<n {
            let row = (0..<c).map { Double(logits[i * c + $0]) }
            let mx = row.max()!, lse = mx + Foundation.log(row.map { Foundation.exp($0 - mx) }.reduce(0, +))
            loss += lse - row[labels[i]]
            for j in 0..<c { grad[i * c + j] = (Foundation.exp(row[j] - lse) - (j == labels[i] ? 1 : 0)) / Double(n) }
        }
        return (loss / Double(n), grad)
    }

    @Test(arguments: TestDevices.all)
    func softmaxCrossEntropyIsOneFusedNodeWithLabelsAndOneHot(device: Device) throws {
        for (n, c) in [(1, 2), (5, 3), (7, 33)] {
            let lv = testValues(n * c, seed: UInt64(c)).map { $0 * 5 }
            let labels = (0..<n).map { ($0 * 7 + 1) % c }
            let (refLoss, refGrad) = Self.crossEntropyReference(lv, labels, n: n, c: c)
            let logits = try Tensor(lv, shape: [n, c], on: device, requiresGrad: true)
            let labelTensor = try Tensor(labels.map(Float.init), shape: [n], on: device)
            let loss = try softmaxCrossEntropy(logits: logits, labels: labelTensor)
            #expect(loss.node?.name == "softmaxCrossEntropy" && loss.node?.inputs.count == 1)
            #expect(loss.node?.inputs.first === logits, "one node straight from the logits")
            expectClose([try loss.item()], [refLoss], rtol: 1e-5, atol: 1e-6, "\(device) CE \(n)x\(c)")
            try loss.backward()
            expectClose(try logits.grad!.toArray(), refGrad, rtol: 1e-4, atol: 1e-6, "\(device) CE grad \(n)x\(c)")
            // One-hot targets give the same loss and gradient.
            logits.zeroGrad()
            let oneHot = try labelTensor.oneHot(classes: c)
            let loss2 = try softmaxCrossEntropy(logits: logits, targets: oneHot)
            #expect(loss2.node?.name == "softmaxCrossEntropy")
            expectClose([try loss2.item()], [refLoss], rtol: 1e-5, atol: 1e-6, "\(device) CE one-hot \(n)x\(c)")
            try loss2.backward()
            expectClose(try logits.grad!.toArray(), refGrad, rtol: 1e-4, atol: 1e-6, "\(device) CE one-hot grad \(n)x\(c)")
            // The Loss value picks the variant from the target's shape.
            expectClose([try Loss.softmaxCrossEntropy(logits, labelTensor).item(), try Loss.softmaxCrossEntropy(logits, oneHot).item()],
                        [refLoss, refLoss], rtol: 1e-5, atol: 1e-6, "\(device) Loss enum")
        }
        // Finite differences, including soft targets and their gradient.
        let logits = try Tensor(testValues(4 * 3, seed: 1), shape: [4, 3], on: device, requiresGrad: true)
        let labels = try Tensor([0, 2, 1, 2], shape: [4], on: device)
        try GradientCheck.check([("logits", logits)], eps: 1e-3, "\(device) CE labels") {
            try softmaxCrossEntropy(logits: logits, labels: labels) * 3
        }
        let soft = try (Tensor(testValues(4 * 3, seed: 2), shape: [4, 3], on: device)).softmax()
        soft.requiresGrad = true
        try GradientCheck.check([("logits", logits), ("targets", soft)], eps: 1e-3, "\(device) CE soft targets") {
            try softmaxCrossEntropy(logits: logits, targets: soft)
        }
        // Huge logits stay finite.
        let big = try Tensor([1000, -1000, 0, 0, 500, -500], shape: [2, 3], on: device)
        expectClose([try softmaxCrossEntropy(logits: big, labels: Tensor([1, 2], shape: [2], on: device)).item()],
                    [1500.0], rtol: 1e-5, "\(device) CE huge logits")
    }

    @Test(arguments: TestDevices.all)
    func negativeLogLikelihoodMatchesCrossEntropy(device: Device) throws {
        let lv = testValues(5 * 4, seed: 9)
        let labels = [3, 0, 1, 1, 2]
        let logits = try Tensor(lv, shape: [5, 4], on: device, requiresGrad: true)
        let labelTensor = try Tensor(labels.map(Float.init), shape: [5], on: device)
        let (refLoss, refGrad) = Self.crossEntropyReference(lv, labels, n: 5, c: 4)
        let loss = try negativeLogLikelihood(logProbabilities: logits.logSoftmax(), labels: labelTensor)
        expectClose([try loss.item()], [refLoss], rtol: 1e-5, "\(device) NLL")
        try loss.backward()
        expectClose(try logits.grad!.toArray(), refGrad, rtol: 1e-4, atol: 1e-6, "\(device) NLL grad")
        let lp = try Tensor(testValues(5 * 4, seed: 10), shape: [5, 4], on: device, requiresGrad: true)
        try GradientCheck.check([("logp", lp)], eps: 1e-3, "\(device) NLL") {
            try negativeLogLikelihood(logProbabilities: lp, labels: labelTensor)
        }
    }

    @Test(arguments: TestDevices.all)
    func shapeMismatchesNameBothShapes(device: Device) throws {
        let a = Tensor.zeros([4, 1], on: device), b = Tensor.zeros([4], on: device)
        let checks: [(String, () throws -> Any)] = [
            ("meanSquaredError", { try meanSquaredError(predictions: a, targets: b) }),
            ("halfSumOfSquares", { try halfSumOfSquares(predictions: a, targets: b) }),
            ("meanAbsoluteError", { try meanAbsoluteError(predictions: a, targets: b) }),
            ("huber", { try huber(predictions: a, targets: b) }),
            ("binaryCrossEntropy", { try binaryCrossEntropy(probabilities: a, targets: b) }),
            ("binaryCrossEntropy", { try binaryCrossEntropy(logits: a, targets: b) }),
            ("softmaxCrossEntropy", { try softmaxCrossEntropy(logits: a, targets: b) }),
            ("softmaxCrossEntropy", { try softmaxCrossEntropy(logits: Tensor.zeros([4, 3], on: device), labels: Tensor.zeros([3], on: device)) }),
            ("negativeLogLikelihood", { try negativeLogLikelihood(logProbabilities: Tensor.zeros([4, 3], on: device), labels: Tensor.zeros([4, 1], on: device)) }),
            ("rootMeanSquaredError", { try rmse(predictions: a, targets: b) }),
            ("accuracy", { try accuracy(predictions: Tensor.zeros([4, 3], on: device), labels: Tensor.zeros([5], on: device)) }),
        ]
        for (name, body) in checks {
            do { _ = try body(); Issue.record("\(name): no error for mismatched shapes") } catch {
                let text = "\(error)"
                #expect(text.contains(name), "\(text)")
                #expect(text.contains("[4, 1]") || text.contains("[4, 3]"), "\(text)")
                #expect(text.contains("[4]") || text.contains("[3]") || text.contains("[5]") || text.contains("[4, 1]"), "\(text)")
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func metrics(device: Device) throws {
        let scores = try Tensor([0.1, 0.9, 0.0,   2, 1, 0,   0, 0, 5,   0.3, 0.3, 0.4], shape: [4, 3], on: device)
        #expect(try accuracy(predictions: scores, labels: Tensor([1, 0, 1, 2], on: device)) == 0.75)
        let probs = try Tensor([0.2, 0.7, 0.5, 0.51], shape: [4, 1], on: device)
        #expect(try binaryAccuracy(predictions: probs, targets: Tensor([0, 1, 1, 1], shape: [4, 1], on: device)) == 0.75)
        let logits = Tensor([-1, 2, 0.1], on: device)
        expectClose([try binaryAccuracy(predictions: logits, targets: Tensor([0, 1, 0], on: device), threshold: 0)], [2.0 / 3],
                    "\(device) binary accuracy of logits")
        let p = Tensor([1, 2, 3, 4], on: device), t = Tensor([1.5, 2, 1, 4], on: device)
        expectClose([try rmse(predictions: p, targets: t)], [((0.25 + 4) / 4).squareRoot()], "\(device) rmse")
        expectClose([try mae(predictions: p, targets: t)], [2.5 / 4], "\(device) mae")
    }
}
