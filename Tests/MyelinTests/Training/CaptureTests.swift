import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Step capture (`CapturedStep`, `fit(capture:)`): a replayed step must give bit-identical results to eager steps,
/// and capture must refuse what it cannot record with an error naming it.
@Suite("Step capture")
struct CaptureTests {
    /// An MLP with BatchNorm and Dropout (mask seed advanced per call).
    static func mlp(_ device: Device, inputs: Int = 5, outputs: Int = 3) -> Sequential {
        Sequential {
            Dense(inputSize: inputs, outputSize: 16, activation: .relu, seed: 11, device: device)
            BatchNorm(features: 16, device: device)
            Dropout(rate: 0.25, seed: 7)
            Dense(inputSize: 16, outputSize: 8, activation: .tanh, seed: 12, device: device)
            Dense(inputSize: 8, outputSize: outputs, seed: 13, device: device)
        }
    }

    /// Every named tensor's values (parameters, running statistics, num_batches_tracked).
    static func state(_ model: any Layer) throws -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: try model.namedTensors.map { ($0.0, try $0.1.toArray()) })
    }

    /// Samples (features [n, inputs], labels [n]) from a fixed seed.
    static func data(_ n: Int, inputs: Int, classes: Int, device: Device) throws -> (Tensor, Tensor) {
        var g = SeededGenerator(seed: 99)
        let x = (0..<(n * inputs)).map { _ in Float(g.nextDouble() * 2 - 1) }
        let y = (0..<n).map { _ in Float(Int(g.next() % UInt64(classes))) }
        return (try Tensor(x, shape: [n, inputs], on: device), try Tensor(y, shape: [n], on: device))
    }

    /// Runs `steps` steps over `n` samples in batches of `batch` (the last one smaller) eagerly and captured, with
    /// the learning rate changed at every step, and expects identical losses and state at every step.
    func expectIdenticalTraining(_ device: Device, steps: Int, n: Int, batch: Int,
                                 makeModel: (Device) -> Sequential, inputs: Int, classes: Int,
                                 makeOptimizer: ([Tensor]) throws -> any Optimizer,
                                 sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (x, y) = try Self.data(n, inputs: inputs, classes: classes, device: device)
        let eagerModel = makeModel(device), capturedModel = makeModel(device)
        #expect(try Self.state(eagerModel) == Self.state(capturedModel), sourceLocation: sourceLocation)
        let eagerOptimizer = try makeOptimizer(eagerModel.parameters)
        let capturedOptimizer = try makeOptimizer(capturedModel.parameters)
        let step = try capturedModel.captureStep(loss: .softmaxCrossEntropy, optimizer: capturedOptimizer)
        let batches = (n + batch - 1) / batch
        for s in 0..<steps {
            let b = s % batches
            let range = (b * batch)..<Swift.min(n, (b + 1) * batch)
            let features = try x.slice(range), targets = try y.slice(range)
            let rate = Float(0.05) * (1 + Float(s % 7)) / 7   // a schedule changing the rate every step
            eagerOptimizer.learningRate = rate
            capturedOptimizer.learningRate = rate
            eagerOptimizer.zeroGrad()
            let eagerLoss = try softmaxCrossEntropy(logits: eagerModel(features), labels: targets)
            try eagerLoss.backward()
            try eagerOptimizer.step()
            let capturedLoss = try step(features, targets)
            #expect(try capturedLoss.item() == eagerLoss.item(), "\(device) step \(s): loss", sourceLocation: sourceLocation)
        }
        let eagerState = try Self.state(eagerModel), capturedState = try Self.state(capturedModel)
        for key in eagerState.keys.sorted() {
            #expect(capturedState[key] == eagerState[key], "\(device): '\(key)' after \(steps) steps", sourceLocation: sourceLocation)
        }
        #expect(eagerState.values.allSatisfy { $0.allSatisfy(\.isFinite) }, sourceLocation: sourceLocation)
        // One record per batch shape: the full batch and the last, smaller one.
        #expect(step.recordCount == (n % batch == 0 ? 1 : 2), sourceLocation: sourceLocation)
        let eagerDrops = eagerModel.layers.compactMap { $0 as? Dropout }.map(\.calls)
        let capturedDrops = capturedModel.layers.compactMap { $0 as? Dropout }.map(\.calls)
        #expect(eagerDrops == capturedDrops && eagerDrops.allSatisfy { $0 == UInt64(steps) }, sourceLocation: sourceLocation)
    }

    @Test("Adam: 50 captured steps give the eager parameters, running statistics and losses bit for bit",
          arguments: TestDevices.all)
    func adamMatchesEager(device: Device) throws {
        try expectIdenticalTraining(device, steps: 50, n: 45, batch: 8, makeModel: { Self.mlp($0) }, inputs: 5, classes: 3,
                                    makeOptimizer: { try Adam(parameters: $0, learningRate: 0.01) })
    }

    @Test("SGD with Nesterov momentum and weight decay: 50 captured steps match eager bit for bit",
          arguments: TestDevices.all)
    func sgdMomentumMatchesEager(device: Device) throws {
        try expectIdenticalTraining(device, steps: 50, n: 33, batch: 7, makeModel: { Self.mlp($0) }, inputs: 5, classes: 3,
                                    makeOptimizer: { try SGD(parameters: $0, learningRate: 0.05, momentum: 0.9,
                                                             nesterov: true, weightDecay: 1e-3) })
    }

    @Test("A convolutional network with BatchNorm and max pooling is captured too", arguments: TestDevices.all)
    func convNetMatchesEager(device: Device) throws {
        try expectIdenticalTraining(device, steps: 4, n: 5, batch: 3,
                                    makeModel: { ConvNets.resnet(depth: 1, classes: 4, imageSize: 8, seed: 3, device: $0) },
                                    inputs: 64, classes: 4, makeOptimizer: { try AdamW(parameters: $0, learningRate: 0.01) })
    }

    @Test("A transformer block (permutes, causal softmax, layer norms, attention dropout) is captured too",
          arguments: TestDevices.all)
    func transformerBlockMatchesEager(device: Device) throws {
        try expectIdenticalTraining(device, steps: 6, n: 10, batch: 4,
                                    makeModel: { device in Sequential {
                                        Reshape([4, 6])
                                        TransformerBlock(embedDim: 6, heads: 2, dropout: 0.2, seed: 7, device: device)
                                        Flatten()
                                        Dense(inputSize: 24, outputSize: 3, seed: 8, device: device)
                                    } },
                                    inputs: 24, classes: 3, makeOptimizer: { try AdamW(parameters: $0, learningRate: 0.01) })
    }

    @Test("fit with capture gives the history and weights of fit without it (schedule per batch, last smaller batch)",
          arguments: TestDevices.all)
    func fitMatchesEager(device: Device) throws {
        let (x, y) = try Self.data(30, inputs: 5, classes: 3, device: device)
        let data = try Dataset(features: x, targets: y)
        var results: [(History, [String: [Float]])] = []
        for capture in [false, true] {
            let model = Self.mlp(device)
            let optimizer = try Adam(parameters: model.parameters, learningRate: 0.02)
            let history = try model.fit(data, epochs: 3, batchSize: 8, loss: .softmaxCrossEntropy, optimizer: optimizer,
                                        metrics: [.accuracy], schedule: try WarmupCosine(warmupEpochs: 1, totalEpochs: 3),
                                        seed: 5, verbosity: .silent, capture: capture)
            results.append((history, try Self.state(model)))
        }
        #expect(results[0].0 == results[1].0, "\(device): the epoch logs")
        for key in results[0].1.keys.sorted() {
            #expect(results[0].1[key] == results[1].1[key], "\(device): '\(key)'")
        }
    }

    @Test("A host read inside the step is refused, naming it; the optimizer has not stepped", arguments: TestDevices.all)
    func hostReadRefused(device: Device) throws {
        let model = Self.mlp(device)
        let optimizer = try SGD(parameters: model.parameters, learningRate: 0.1)
        let step = try model.captureStep(optimizer: optimizer) { output, targets in
            _ = try output.sum().item()
            return try softmaxCrossEntropy(logits: output, labels: targets)
        }
        let (x, y) = try Self.data(4, inputs: 5, classes: 3, device: device)
        let before = try model.parameters.map { try $0.toArray() }
        #expect(throws: CaptureError.hostRead(device: device.name, elements: 1)) { try step(x, y) }
        #expect(try model.parameters.map { try $0.toArray() } == before, "the update must not have run")
        #expect(CaptureError.hostRead(device: "cpu", elements: 1).description.contains("item()"))
        #expect(step.recordCount == 0)
    }

    @Test("A host write, an unused seed and replaced state are refused with errors naming them", arguments: TestDevices.all)
    func otherRefusals(device: Device) throws {
        let (x, y) = try Self.data(4, inputs: 5, classes: 3, device: device)
        let model = Self.mlp(device)
        let optimizer = try SGD(parameters: model.parameters, learningRate: 0.1)
        let writes = try model.captureStep(optimizer: optimizer) { output, targets in
            try softmaxCrossEntropy(logits: output, labels: targets) * Tensor(scalar: 2, on: device)
        }
        #expect(throws: CaptureError.hostWrite(device: device.name, elements: 1)) { try writes(x, y) }
        let draws = try model.captureStep(optimizer: optimizer) { output, targets in
            _ = Random.nextSeed()
            return try softmaxCrossEntropy(logits: output, labels: targets)
        }
        #expect(throws: CaptureError.seedNotUsed(count: 1)) { try draws(x, y) }

        let rebinding = Sequential { Dense(inputSize: 5, outputSize: 3, seed: 1, device: device); CountingLayer(device: device) }
        let step = try rebinding.captureStep(loss: .softmaxCrossEntropy,
                                             optimizer: try SGD(parameters: rebinding.parameters, learningRate: 0.1))
        #expect(throws: CaptureError.stateReplaced(keys: ["1.count"])) { try step(x, y) }
        #expect(CaptureError.stateReplaced(keys: ["1.count"]).description.contains("'1.count'"))
    }

    @Test("fit falls back to eager steps when capture is refused, with the same results as capture: false",
          arguments: TestDevices.all)
    func fitFallsBack(device: Device) throws {
        let (x, y) = try Self.data(12, inputs: 5, classes: 3, device: device)
        let data = try Dataset(features: x, targets: y)
        var states: [[String: [Float]]] = []
        for capture in [false, true] {
            let model = Sequential { Dense(inputSize: 5, outputSize: 3, seed: 1, device: device); CountingLayer(device: device) }
            let optimizer = try SGD(parameters: model.parameters, learningRate: 0.1)
            let step = CapturedStep(model: model, optimizer: optimizer, loss: { try Loss.softmaxCrossEntropy($0, $1) })
            if capture {
                // The refused first step completes eagerly; every later one runs eagerly.
                for b in data.batches(size: 4) { _ = try step.fitStep(b.features, b.targets) }
                #expect(step.refusal == .stateReplaced(keys: ["1.count"]))
            } else {
                try model.fit(data, epochs: 1, batchSize: 4, loss: .softmaxCrossEntropy, optimizer: optimizer,
                              shuffle: false, verbosity: .silent, capture: false)
            }
            states.append(try Self.state(model))
        }
        #expect(states[0] == states[1])
        #expect(states[0]["1.count"] == [3])
        // A layer type of the program's own makes fit train eagerly by default.
        #expect(!CapturedStep.isBuiltIn(Sequential { Dense(inputSize: 5, outputSize: 3, device: device); CountingLayer(device: device) }))
        #expect(CapturedStep.isBuiltIn(Self.mlp(device)))
    }

    @Test("A replay does the eager step's device work plus two input copies, allocating nothing and writing nothing",
          arguments: [false, true])
    func replayDoesTheSameWork(openCL: Bool) throws {
        if openCL && !TestDevices.openCLAvailable { return }
        // Devices of their own, so that tests running in parallel do not move the counters.
        let device = openCL ? try DeviceTests.privateOpenCLDevice() : DeviceTests.privateCPUDevice()
        let (x, y) = try Self.data(8, inputs: 5, classes: 3, device: device)
        let eagerModel = Self.mlp(device), capturedModel = Self.mlp(device)
        let eagerOptimizer = try Adam(parameters: eagerModel.parameters, learningRate: 0.01)
        let step = try capturedModel.captureStep(loss: .softmaxCrossEntropy,
                                                 optimizer: try Adam(parameters: capturedModel.parameters, learningRate: 0.01))
        func eagerStep() throws {
            eagerOptimizer.zeroGrad()
            try softmaxCrossEntropy(logits: eagerModel(x), labels: y).backward()
            try eagerOptimizer.step()
        }
        // Two steps each first: the optimizer's state exists from then on.
        for _ in 0..<2 { try eagerStep(); try step(x, y) }
        let calls = try #require(step.recordedCallCount(features: [8, 5], targets: [8]))
        #expect(calls > 20)
        // On OpenCL every recorded call but device copies replays as launches with their arguments set once.
        let prepared = try #require(step.preparedCallCount(features: [8, 5], targets: [8]))
        #expect(openCL ? prepared >= calls - 4 : prepared == 0, "\(prepared) of \(calls) calls prepared")
        device.synchronize()
        let start = device.stats
        for _ in 0..<5 { try eagerStep() }
        device.synchronize()
        let middle = device.stats
        for _ in 0..<5 { try step(x, y) }
        device.synchronize()
        let end = device.stats
        #expect(end.allocations == middle.allocations)
        #expect(end.hostWrites == middle.hostWrites && end.hostReads == middle.hostReads)
        #expect(end.launches - middle.launches == middle.launches - start.launches + 5 * 2)
    }

    @Test("Replacing a model tensor and calling invalidate() records again; another device's op is refused")
    func invalidateAndOtherDevice() throws {
        let device = Device.cpu
        let model = Self.mlp(device)
        let optimizer = try SGD(parameters: model.parameters, learningRate: 0.1)
        let step = try model.captureStep(loss: .softmaxCrossEntropy, optimizer: optimizer)
        let (x, y) = try Self.data(8, inputs: 5, classes: 3, device: device)
        try step(x, y)
        try step(x, y)
        #expect(step.recordCount == 1)
        step.invalidate()
        try step(x, y)
        #expect(step.recordCount == 2)
        #expect(throws: TrainingError.self) {
            try model.captureStep(loss: .softmaxCrossEntropy, optimizer: try SGD(parameters: Self.mlp(device).parameters))
        }
        guard TestDevices.openCLAvailable else { return }
        let other = TestDevices.openCL
        let crossing = try model.captureStep(optimizer: optimizer) { output, targets in
            _ = Tensor.zeros([2], on: other)
            return try softmaxCrossEntropy(logits: output, labels: targets)
        }
        #expect(throws: CaptureError.otherDevice(captured: "cpu", used: other.name)) { try crossing(x, y) }
    }
}

/// A layer that rebinds a state tensor at every call (what capture must refuse).
private final class CountingLayer: Layer {
    var count: Tensor
    var isTraining = true
    init(device: Device) { count = Tensor.zeros([1], on: device) }
    func callAsFunction(_ input: Tensor) throws -> Tensor {
        count = withNoGrad { count + 1 }
        return input
    }
    var namedTensors: [(String, Tensor)] { [("count", count)] }
    func setTensor(_ name: String, _ value: Tensor) throws { count = value.copy() }
    var layerDescription: String { "CountingLayer" }
}
