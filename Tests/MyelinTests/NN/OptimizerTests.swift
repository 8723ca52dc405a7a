import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Gives a parameter a gradient by hand (tests only; `grad` is set by `backward()` otherwise).
func setGradient(_ p: Tensor, _ values: [Float]) throws {
    p.grad = try Tensor(values, shape: p.shape, on: p.device)
}

/// A reference optimizer in Double: updates θ in place from g at step t (1-based), keeping its own state.
typealias ReferenceStep = (_ theta: inout [Double], _ grad: [Double], _ t: Int) -> Void

enum OptimizerReference {
    static func sgd(lr: Double, momentum: Double = 0, dampening: Double = 0, nesterov: Bool = false,
                    weightDecay: Double = 0, decoupled: Bool = false) -> ReferenceStep {
        var buffer: [Double] = []
        return { theta, grad, t in
            for i in 0..<theta.count {
                var g = grad[i]
                if decoupled { theta[i] *= 1 - lr * weightDecay } else { g += weightDecay * theta[i] }
                if momentum != 0 {
                    if t == 1 { if buffer.isEmpty { buffer = Array(repeating: 0, count: theta.count) }; buffer[i] = g }
                    else { buffer[i] = momentum * buffer[i] + (1 - dampening) * g }
                    g = nesterov ? g + momentum * buffer[i] : buffer[i]
                }
                theta[i] -= lr * g
            }
        }
    }

    static func adagrad(lr: Double, lrDecay: Double = 0, weightDecay: Double = 0, initial: Double = 0,
                        eps: Double = 1e-10) -> ReferenceStep {
        var sum: [Double] = []
        return { theta, grad, t in
            if sum.isEmpty { sum = Array(repeating: initial, count: theta.count) }
            let clr = lr / (1 + Double(t - 1) * lrDecay)
            for i in 0..<theta.count {
                let g = grad[i] + weightDecay * theta[i]
                sum[i] += g * g
                theta[i] -= clr * g / (sum[i].squareRoot() + eps)
            }
        }
    }

    static func rmsprop(lr: Double, alpha: Double = 0.99, eps: Double = 1e-8, weightDecay: Double = 0,
                        momentum: Double = 0, centered: Bool = false) -> ReferenceStep {
        var v: [Double] = [], gAvg: [Double] = [], b: [Double] = []
        return { theta, grad, _ in
            if v.isEmpty {
                v = Array(repeating: 0, count: theta.count); gAvg = v; b = v
            }
            for i in 0..<theta.count {
                let g = grad[i] + weightDecay * theta[i]
                v[i] = alpha * v[i] + (1 - alpha) * g * g
                var avg = v[i]
                if centered {
                    gAvg[i] = alpha * gAvg[i] + (1 - alpha) * g
                    avg -= gAvg[i] * gAvg[i]
                }
                let denom = avg.squareRoot() + eps
                if momentum > 0 {
                    b[i] = momentum * b[i] + g / denom
                    theta[i] -= lr * b[i]
                } else {
                    theta[i] -= lr * g / denom
                }
            }
        }
    }

    /// Adam, or AdamW when `decoupled` (the textbook form: bias-corrected m̂ and v̂).
    static func adam(lr: Double, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                     weightDecay: Double = 0, amsgrad: Bool = false, decoupled: Bool = false) -> ReferenceStep {
        var m: [Double] = [], v: [Double] = [], vMax: [Double] = []
        return { theta, grad, t in
            if m.isEmpty { m = Array(repeating: 0, count: theta.count); v = m; vMax = m }
            for i in 0..<theta.count {
                var g = grad[i]
                if decoupled { theta[i] *= 1 - lr * weightDecay } else { g += weightDecay * theta[i] }
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                vMax[i] = max(vMax[i], v[i])
                let mHat = m[i] / (1 - pow(beta1, Double(t)))
                let vHat = (amsgrad ? vMax[i] : v[i]) / (1 - pow(beta2, Double(t)))
                theta[i] -= lr * mHat / (vHat.squareRoot() + eps)
            }
        }
    }
}

/// One optimizer configuration: how to build it and its Double reference.
struct OptimizerCase: CustomStringConvertible, @unchecked Sendable {
    let description: String
    let make: ([Tensor]) throws -> Optimizer
    let reference: () -> ReferenceStep

    static let all: [OptimizerCase] = [
        OptimizerCase(description: "SGD") { try SGD(parameters: $0, learningRate: 0.1) }
            reference: { OptimizerReference.sgd(lr: 0.1) },
        OptimizerCase(description: "SGD momentum") { try SGD(parameters: $0, learningRate: 0.1, momentum: 0.9) }
            reference: { OptimizerReference.sgd(lr: 0.1, momentum: 0.9) },
        OptimizerCase(description: "SGD momentum dampening weight decay") {
            try SGD(parameters: $0, learningRate: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.1)
        } reference: { OptimizerReference.sgd(lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.1) },
        OptimizerCase(description: "SGD nesterov") {
            try SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, nesterov: true)
        } reference: { OptimizerReference.sgd(lr: 0.1, momentum: 0.9, nesterov: true) },
        OptimizerCase(description: "SGD decoupled weight decay") {
            try SGD(parameters: $0, learningRate: 0.1, momentum: 0.5, weightDecay: 0.2, decoupledWeightDecay: true)
        } reference: { OptimizerReference.sgd(lr: 0.1, momentum: 0.5, weightDecay: 0.2, decoupled: true) },
        OptimizerCase(description: "Adagrad") { try Adagrad(parameters: $0) }
            reference: { OptimizerReference.adagrad(lr: 0.01) },
        OptimizerCase(description: "Adagrad decay, weight decay, initial accumulator") {
            try Adagrad(parameters: $0, learningRate: 0.1, learningRateDecay: 0.5, weightDecay: 0.1,
                        initialAccumulatorValue: 0.25)
        } reference: { OptimizerReference.adagrad(lr: 0.1, lrDecay: 0.5, weightDecay: 0.1, initial: 0.25) },
        OptimizerCase(description: "RMSProp") { try RMSProp(parameters: $0) }
            reference: { OptimizerReference.rmsprop(lr: 0.01) },
        // Centered RMSProp divides by √(E[g²] − E[g]²), which cancels for a steady gradient: float rounding
        // differences between devices grow more over a training run than for the other optimizers.
        OptimizerCase(description: "RMSProp centered", trainingTolerance: 1e-2) {
            try RMSProp(parameters: $0, learningRate: 0.01, alpha: 0.9, centered: true)
        } reference: { OptimizerReference.rmsprop(lr: 0.01, alpha: 0.9, centered: true) },
        OptimizerCase(description: "RMSProp momentum weight decay") {
            try RMSProp(parameters: $0, learningRate: 0.01, weightDecay: 0.1, momentum: 0.9)
        } reference: { OptimizerReference.rmsprop(lr: 0.01, weightDecay: 0.1, momentum: 0.9) },
        OptimizerCase(description: "RMSProp centered momentum weight decay") {
            try RMSProp(parameters: $0, learningRate: 0.02, alpha: 0.8, eps: 1e-6, weightDecay: 0.05, momentum: 0.5,
                        centered: true)
        } reference: {
            OptimizerReference.rmsprop(lr: 0.02, alpha: 0.8, eps: 1e-6, weightDecay: 0.05, momentum: 0.5, centered: true)
        },
        OptimizerCase(description: "Adam") { try Adam(parameters: $0) }
            reference: { OptimizerReference.adam(lr: 1e-3) },
        OptimizerCase(description: "Adam L2 weight decay") {
            try Adam(parameters: $0, learningRate: 0.01, betas: (0.8, 0.9), eps: 1e-6, weightDecay: 0.1)
        } reference: { OptimizerReference.adam(lr: 0.01, beta1: 0.8, beta2: 0.9, eps: 1e-6, weightDecay: 0.1) },
        OptimizerCase(description: "Adam amsgrad") {
            try Adam(parameters: $0, learningRate: 0.01, betas: (0.8, 0.5), amsgrad: true)
        } reference: { OptimizerReference.adam(lr: 0.01, beta1: 0.8, beta2: 0.5, amsgrad: true) },
        OptimizerCase(description: "AdamW") { try AdamW(parameters: $0) }
            reference: { OptimizerReference.adam(lr: 1e-3, weightDecay: 0.01, decoupled: true) },
        OptimizerCase(description: "AdamW strong decay amsgrad") {
            try AdamW(parameters: $0, learningRate: 0.05, betas: (0.7, 0.5), weightDecay: 0.5, amsgrad: true)
        } reference: {
            OptimizerReference.adam(lr: 0.05, beta1: 0.7, beta2: 0.5, weightDecay: 0.5, amsgrad: true, decoupled: true)
        },
    ]

    /// Relative tolerance when comparing weights trained on the CPU and on OpenCL.
    let trainingTolerance: Double

    init(description: String, trainingTolerance: Double = 1e-3, make: @escaping ([Tensor]) throws -> Optimizer,
         reference: @escaping () -> ReferenceStep) {
        self.description = description
        self.trainingTolerance = trainingTolerance
        self.make = make
        self.reference = reference
    }
}

/// The gradient given at step t (1-based): large, then small (so AMSGrad's maximum matters), then medium,
/// with mixed signs and one element exactly 0.
func fixedGradient(step t: Int, count: Int) -> [Float] {
    let scale: [Float] = [3, 0.1, 1, 0.5, 2]
    var g = testValues(count, seed: UInt64(100 + t)).map { $0 * scale[(t - 1) % scale.count] }
    g[count / 2] = 0
    return g
}

@Suite struct OptimizerTests {
    static let cases: [(OptimizerCase, Device)] = OptimizerCase.all.flatMap { c in TestDevices.all.map { (c, $0) } }

    @Test(arguments: cases)
    func firstThreeStepsMatchFormulas(optimizerCase: OptimizerCase, device: Device) throws {
        let initial = testValues(5, seed: 7)
        let p = try Tensor(initial, shape: [5], on: device, requiresGrad: true)
        let optimizer = try optimizerCase.make([p])
        let reference = optimizerCase.reference()
        var theta = initial.map(Double.init)
        for t in 1...3 {
            let g = fixedGradient(step: t, count: 5)
            try setGradient(p, g)
            try optimizer.step()
            reference(&theta, g.map(Double.init), t)
            expectClose(try p.toArray(), theta, rtol: 2e-5, atol: 1e-6, "\(optimizerCase) on \(device), step \(t)")
        }
        #expect(optimizer.stepCount == 3)
    }

    @Test(arguments: cases)
    func multipleOddShapedParametersUpdateIndependently(optimizerCase: OptimizerCase, device: Device) throws {
        // Parameters of 1, 7×3 and 129 elements; the middle one has no gradient on step 2 (skipped, like PyTorch).
        let shapes = [[1], [7, 3], [129]]
        let initial = shapes.enumerated().map { testValues($0.element.reduce(1, *), seed: UInt64(20 + $0.offset)) }
        let params = try zip(initial, shapes).map { try Tensor($0, shape: $1, on: device, requiresGrad: true) }
        let optimizer = try optimizerCase.make(params)
        let references = shapes.map { _ in optimizerCase.reference() }
        var thetas = initial.map { $0.map(Double.init) }
        var steps = [0, 0, 0]
        for t in 1...3 {
            for (k, p) in params.enumerated() {
                if k == 1 && t == 2 { p.zeroGrad(); continue }
                try setGradient(p, fixedGradient(step: t + k, count: p.count))
            }
            try optimizer.step()
            for k in 0..<params.count where !(k == 1 && t == 2) {
                steps[k] += 1
                references[k](&thetas[k], fixedGradient(step: t + k, count: params[k].count).map(Double.init), steps[k])
            }
            for k in 0..<params.count {
                expectClose(try params[k].toArray(), thetas[k], rtol: 2e-5, atol: 1e-6, "\(optimizerCase) on \(device), param \(k), step \(t)")
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func gradientFromBackwardDrivesTheUpdate(device: Device) throws {
        // loss = Σ c·w  ⇒  ∂loss/∂w = c, so one SGD step moves w by −lr·c.
        let w = try Tensor([1, 2, 3], shape: [3], on: device, requiresGrad: true)
        let c = try Tensor([0.5, -1, 2], shape: [3], on: device)
        let optimizer = try SGD(parameters: [w], learningRate: 0.1)
        optimizer.zeroGrad()
        try (w * c).sum().backward()
        try optimizer.step()
        expectClose(try w.toArray(), [0.95, 2.1, 2.8], rtol: 1e-6, atol: 1e-6, "SGD after backward on \(device)")
        optimizer.zeroGrad()
        #expect(w.grad == nil)
    }

    @Test(arguments: TestDevices.all)
    func badGradientThrowsBeforeChangingAnything(device: Device) throws {
        let a = try Tensor([1, 2], shape: [2], on: device, requiresGrad: true)
        let b = try Tensor([3, 4, 5], shape: [3], on: device, requiresGrad: true)
        let optimizer = try Adam(parameters: [a, b], learningRate: 0.1)
        try setGradient(a, [1, 1])
        b.grad = try Tensor([1, 1], shape: [2], on: device)
        #expect(throws: OptimizerError.gradientShape(optimizer: "Adam", index: 1, parameter: [3], gradient: [2])) {
            try optimizer.step()
        }
        #expect(try a.toArray() == [1, 2])
        #expect(optimizer.stepCount == 0)
        #expect(optimizer.stateTensors().map(\.0) == ["step"])
    }

    @Test func invalidHyperparametersAndParametersThrow() throws {
        let p = try Tensor([1, 2], shape: [2], on: .cpu, requiresGrad: true)
        #expect(throws: OptimizerError.self) { try SGD(parameters: [p], learningRate: -1) }
        #expect(throws: OptimizerError.self) { try SGD(parameters: [p], learningRate: 0.1, nesterov: true) }
        #expect(throws: OptimizerError.self) { try SGD(parameters: [p], learningRate: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true) }
        #expect(throws: OptimizerError.self) { try Adam(parameters: [p], betas: (1.0, 0.999)) }
        #expect(throws: OptimizerError.self) { try AdamW(parameters: [p], betas: (0.9, -0.1)) }
        #expect(throws: OptimizerError.self) { try Adam(parameters: [p], eps: -1) }
        #expect(throws: OptimizerError.self) { try RMSProp(parameters: [p], alpha: 1.5) }
        #expect(throws: OptimizerError.self) { try RMSProp(parameters: [p], momentum: -0.1) }
        #expect(throws: OptimizerError.self) { try Adagrad(parameters: [p], learningRateDecay: -1) }
        #expect(throws: OptimizerError.self) { try Adagrad(parameters: [p], weightDecay: -1) }
        // A parameter twice, and a non-leaf.
        #expect(throws: OptimizerError.self) { try SGD(parameters: [p, p]) }
        #expect(throws: OptimizerError.self) { try SGD(parameters: [p * 2]) }
        // Messages name the optimizer and the value.
        do {
            _ = try Adam(parameters: [p], betas: (0.9, 1.0))
            Issue.record("expected a throw")
        } catch {
            #expect("\(error)".contains("Adam") && "\(error)".contains("betas.1"))
        }
    }

    @Test(arguments: OptimizerCase.all)
    func savedStateResumesExactly(optimizerCase: OptimizerCase) throws {
        // Two steps on one optimizer, state saved; a fresh optimizer (on every device) loads it and the
        // third step matches the original's.
        let initial = testValues(7, seed: 3)
        let p = try Tensor(initial, shape: [7], on: .cpu, requiresGrad: true)
        let original = try optimizerCase.make([p])
        for t in 1...2 { try setGradient(p, fixedGradient(step: t, count: 7)); try original.step() }
        let saved = original.stateTensors()
        let savedValues = Dictionary(uniqueKeysWithValues: saved.map { ($0.0, $0.1.copy()) })
        let savedArrays = try savedValues.mapValues { try $0.toArray() }
        #expect(try saved.first { $0.0 == "step" }?.1.item() == 2)
        let afterTwo = try p.toArray()
        try setGradient(p, fixedGradient(step: 3, count: 7))
        try original.step()
        let expected = try p.toArray()

        for device in TestDevices.all {
            let q = try Tensor(afterTwo, shape: [7], on: device, requiresGrad: true)
            let resumed = try optimizerCase.make([q])
            try resumed.loadState(savedValues)
            #expect(resumed.stepCount == 2)
            try setGradient(q, fixedGradient(step: 3, count: 7))
            try resumed.step()
            expectClose(try q.toArray(), expected.map(Double.init), rtol: 1e-5, atol: 1e-6, "\(optimizerCase) resumed on \(device)")
            // The loaded tensors were copied: stepping did not change the caller's tensors.
            for (key, t) in savedValues { #expect(try t.toArray() == savedArrays[key], "\(optimizerCase): '\(key)' changed") }
        }
    }

    @Test func loadStateRejectsBadState() throws {
        let p = try Tensor([1, 2, 3], shape: [3], on: .cpu, requiresGrad: true)
        let adam = try Adam(parameters: [p])
        let good = Tensor.zeros([3], on: .cpu)
        let step = Tensor(scalar: 1, on: .cpu)
        #expect(throws: OptimizerError.self) { try adam.loadState(["0.momentum_buffer": good, "0.step": step]) }
        #expect(throws: OptimizerError.self) { try adam.loadState(["0.exp_avg": good, "0.step": step]) }  // exp_avg_sq missing
        #expect(throws: OptimizerError.self) {
            try adam.loadState(["0.exp_avg": Tensor.zeros([4], on: .cpu), "0.exp_avg_sq": good, "0.step": step])
        }
        #expect(throws: OptimizerError.self) { try adam.loadState(["1.exp_avg": good, "1.exp_avg_sq": good, "1.step": step]) }
        #expect(throws: OptimizerError.self) { try adam.loadState(["0.exp_avg": good, "0.exp_avg_sq": good]) }  // step missing
        #expect(throws: OptimizerError.self) { try adam.loadState(["0.exp_avg": good, "0.exp_avg_sq": good, "0.step": Tensor(scalar: 1.5, on: .cpu)]) }
        #expect(throws: OptimizerError.self) { try adam.loadState(["lr": step]) }
        try adam.loadState(["0.exp_avg": good, "0.exp_avg_sq": good, "0.step": step, "step": step])
        #expect(adam.stepCount == 1)
    }

    /// A private OpenCL device whose counters no other (parallel) test touches.
    static func privateOpenCLDevice() throws -> Device {
        Device(backend: try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0]))
    }

    /// A private OpenCL device that runs Adam's updates 8 parameters per launch, as on a GPU (`MYELIN_MULTI_TENSOR`).
    static func privateGroupingOpenCLDevice() throws -> Device {
        let environment = ProcessInfo.processInfo.environment.merging(["MYELIN_MULTI_TENSOR": "1"]) { $1 }
        return Device(backend: try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0], environment: environment))
    }

    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason), arguments: OptimizerCase.all)
    func stepStaysOnTheDevice(optimizerCase: OptimizerCase) throws {
        for device in [try Self.privateOpenCLDevice(), try Self.privateGroupingOpenCLDevice()] {
            try stepStaysOnTheDevice(optimizerCase, device: device)
        }
    }

    private func stepStaysOnTheDevice(_ optimizerCase: OptimizerCase, device: Device) throws {
        let params = try [[4, 3], [3], [1]].enumerated().map {
            try Tensor(testValues($0.element.reduce(1, *), seed: UInt64($0.offset)), shape: $0.element, on: device, requiresGrad: true)
        }
        let optimizer = try optimizerCase.make(params)
        for p in params { try setGradient(p, fixedGradient(step: 1, count: p.count)) }
        try optimizer.step()   // creates the state
        for _ in 0..<3 {
            let before = device.stats
            try optimizer.step()
            let after = device.stats
            #expect(after.hostReads == before.hostReads, "\(optimizerCase): step() read from the device")
            #expect(after.hostWrites == before.hostWrites, "\(optimizerCase): step() wrote from the host")
            #expect(after.allocations == before.allocations, "\(optimizerCase): step() allocated device memory")
            #expect(after.waits == before.waits, "\(optimizerCase): step() waited for the device")
            // Adam and AdamW update up to 8 parameters per launch where the device groups them (GPUs); elsewhere,
            // and for the other optimizers, one launch per parameter.
            let groups = (device.backend as? OpenCLBackend)?.groupsOptimizerUpdates ?? false
            let expected = optimizer is Adam && groups ? 1 : params.count
            #expect(after.launches - before.launches == expected, "\(optimizerCase): \(expected) launches per step")
        }
    }

    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason), arguments: OptimizerCase.all)
    func linearRegressionTrainsTheSameOnBothDevices(optimizerCase: OptimizerCase) throws {
        // y = x·w* + b* + noise, 32 samples, 3 features; 60 full-batch steps of mean squared error.
        let n = 32, features = 3
        let trueW: [Float] = [1.5, -2, 0.5], trueB: Float = 0.3
        let xs = testValues(n * features, seed: 11)
        let noise = testValues(n, seed: 12).map { $0 * 0.01 }
        let ys = (0..<n).map { i in (0..<features).reduce(trueB) { $0 + xs[i * features + $1] * trueW[$1] } + noise[i] }
        var results: [[Float]] = []
        var losses: [(first: Float, last: Float)] = []
        for device in [Device.cpu, TestDevices.openCL] {
            let x = try Tensor(xs, shape: [n, features], on: device)
            let y = try Tensor(ys, shape: [n, 1], on: device)
            let w = Tensor.normal([features, 1], std: 0.1, seed: 5, on: device)
            w.requiresGrad = true
            let b = Tensor.zeros([1], on: device)
            b.requiresGrad = true
            let optimizer = try optimizerCase.make([w, b])
            var first: Float = 0, last: Float = 0
            for step in 0..<60 {
                optimizer.zeroGrad()
                let loss = try (x.matmul(w) + b - y).square().mean()
                try loss.backward()
                try optimizer.step()
                if step == 0 { first = try loss.item() }
                if step == 59 { last = try loss.item() }
            }
            results.append(try w.toArray() + b.toArray())
            losses.append((first, last))
        }
        expectClose(results[1], results[0].map(Double.init), rtol: optimizerCase.trainingTolerance, atol: 1e-4,
                    "\(optimizerCase): OpenCL vs CPU weights")
        #expect(losses[0].last < losses[0].first, "\(optimizerCase): the loss went down (\(losses[0]))")
        #expect(Swift.abs(losses[1].last - losses[0].last) <= Float(optimizerCase.trainingTolerance) * Swift.max(1, losses[0].last))
    }
}
