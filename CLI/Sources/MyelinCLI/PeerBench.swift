import ArgumentParser
import Foundation
import Myelin

/// `myelin bench peers`: the Myelin side of `scripts/bench-peers`, with the same protocol as its Python peers
/// (Benchmarks/*.py), printing one JSON line.
///
/// - `--workload mlp`: the Fashion-MNIST MLP 784-512-256-10 (ReLU, Adam 1e-3, softmax cross-entropy) on data
///   that `Benchmarks/fashion_mnist.py export` wrote as raw little-endian Float32 files (so every runtime
///   trains on the same pixels in the same batch order): `--warmup` steps, then one timed epoch (or its first
///   `--batches`), then
///   test-set inference in chunks of `--eval-batch`.
/// - `--workload cnn` / `--workload resnet` / `--workload resnet14`: `ConvNets.fashionCNN` /
///   `ConvNets.resnet(depth: 1)` (ResNet-8) / `ConvNets.resnet(depth: 2)` (ResNet-14, the trainer's default),
///   Adam 1e-3, softmax cross-entropy, no augmentation, on the same export and batch order: `--warmup` steps,
///   then `--batches` timed training steps (0: the whole epoch). Training samples/s only.
/// - `--workload xor`: the XOR lab, 2-3-1 sigmoid without bias, ½Σ(y - t)², SGD lr 0.1, `--steps` full-batch steps.
///
/// ```
/// python3 Benchmarks/fashion_mnist.py export /tmp/fm && myelin bench peers --workload mlp --data /tmp/fm --device cpu
/// ```
struct PeerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers", abstract: "The Myelin side of scripts/bench-peers (MLP, CNN or ResNet-8 epoch, or XOR lab), as one JSON line.")

    @OptionGroup var device: DeviceOptions
    @Option(help: "mlp, cnn, resnet, resnet14 or xor.") var workload = "mlp"
    @Option(help: "Folder written by `Benchmarks/fashion_mnist.py export` (mlp, cnn, resnet).") var data: String?
    @Option(parsing: .unconditional, help: "Evaluation chunk size (mlp).") var evalBatch = 1000
    @Option(parsing: .unconditional, help: "Untimed steps before the timed ones.") var warmup = 20
    @Option(parsing: .unconditional, help: "Timed full-batch steps (xor).") var steps = 20_000
    @Option(parsing: .unconditional, help: "Timed training batches after the warm-up (mlp, cnn, resnet; 0: the whole epoch).")
    var batches = 0
    @Flag(help: "Capture the training step once and replay it (captureStep); mlp, cnn, resnet and xor.") var capture = false
    @Flag(help: "Keep the convnets' training images as the Float32 tensor the export holds, not as bytes (cnn, resnet, resnet14; for comparison: the same values, four times the memory).")
    var floatImages = false
    @Flag(help: "Train the timed batches with fit (one epoch, captured step, accuracy metric, no shuffling), as the trainers do, and count its launches per step; mlp, cnn and resnet.")
    var fit = false
    @Flag(help: "Per-kernel device times of the timed steps (a profiling queue, as MYELIN_PROFILE_KERNELS=1): one JSON line per kernel after the result, and a table on stderr; OpenCL, not with --fit. The profiling slows the steps.")
    var profileKernels = false

    func validate() throws {
        try checkingValues {
            try ValueCheck.atLeast(1, evalBatch, name: "--eval-batch")
            try ValueCheck.atLeast(0, warmup, name: "--warmup")
            try ValueCheck.atLeast(1, steps, name: "--steps")
            try ValueCheck.atLeast(0, batches, name: "--batches")
        }
        guard ["mlp", "cnn", "resnet", "resnet14", "xor"].contains(workload) else {
            throw ValidationError("--workload must be mlp, cnn, resnet, resnet14 or xor, got '\(workload)'")
        }
        if profileKernels && fit { throw ValidationError("--profile-kernels times the steps of --capture or the eager step, not --fit") }
        if fit && !["mlp", "cnn", "resnet", "resnet14"].contains(workload) {
            throw ValidationError("--fit is for --workload mlp, cnn, resnet or resnet14, got '\(workload)'")
        }
    }

    func run() throws {
        // Before the device is made: its queue is a profiling one only when the variable is set then.
        let profiling = ProcessInfo.processInfo.environment["MYELIN_PROFILE_KERNELS"].map { !["", "0", "off", "no", "false"].contains($0.lowercased()) }
        if profileKernels && profiling != true { setenv("MYELIN_PROFILE_KERNELS", "1", 1) }
        let device = try self.device.resolve()
        if profileKernels && !device.profilesKernels {
            throw ValidationError("--profile-kernels needs an OpenCL device; \(device.name) is not one")
        }
        Device.default = device  // anything made without a device lands there too
        switch workload {
        case "mlp": try mlp(on: device)
        case "cnn": try convnet(ConvNets.fashionCNN(seed: 1, device: device), on: device)
        case "resnet": try convnet(ConvNets.resnet(depth: 1, seed: 1, device: device), on: device)
        case "resnet14": try convnet(ConvNets.resnet(depth: 2, seed: 1, device: device), on: device)
        case "xor": try xor(on: device)
        default: throw ValidationError("--workload must be mlp, cnn, resnet, resnet14 or xor, got '\(workload)'")
        }
    }

    /// How to make the folder `--data` names, for messages.
    static let exportHint = "write one with: python3 Benchmarks/fashion_mnist.py export DIR"

    /// A raw Float32 file of the export, as a tensor of `shape` on `device`; errors name `--data`, the file and
    /// what is wrong with it.
    private func load(_ name: String, _ shape: [Int], on device: Device) throws -> Tensor {
        guard let data else { throw ValidationError("--workload \(workload) needs --data (\(Self.exportHint))") }
        // Read in chunks straight into the tensor: the values are never held twice on the host, so the
        // whole-process peak memory is the training set once, as with NumPy's fromfile + torch.from_numpy.
        do {
            return try Tensor.load(float32File: URL(fileURLWithPath: data).appendingPathComponent(name), shape: shape, on: device)
        } catch {
            throw FileOptionError(message: "--data \(data): \(error) (meta.json asks for \(shape.map(String.init).joined(separator: "×"))"
                                  + " float32 values in \(name); \(Self.exportHint))")
        }
    }

    /// The export's batch order (`batches.f32`, [batches, batch]), each value checked to be a training image's index.
    private func batchOrder(_ batches: Int, _ batch: Int, train: Int, on device: Device) throws -> Tensor {
        let order = try load("batches.f32", [batches, batch], on: device)
        if let bad = try order.toArray().enumerated().first(where: { $0.1 < 0 || $0.1 >= Float(train) || $0.1 != $0.1.rounded() }) {
            throw FileOptionError(message: "--data \(data ?? ""): batches.f32 holds \(bad.1) at position \(bad.0), which is not the index of one of the \(train) training images (meta.json's train); \(Self.exportHint)")
        }
        return order
    }

    /// The export's meta.json: batch size, batches in the epoch, training and test images. Errors name the file
    /// and what is wrong: missing, unreadable, not JSON, a field missing or not a whole number >= 1.
    private func meta() throws -> (batch: Int, batches: Int, train: Int, test: Int) {
        guard let data else { throw ValidationError("--workload \(workload) needs --data (\(Self.exportHint))") }
        let file = URL(fileURLWithPath: data).appendingPathComponent("meta.json")
        func problem(_ what: String) -> FileOptionError { FileOptionError(message: "--data \(data): \(what); \(Self.exportHint)") }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isFolder), isFolder.boolValue else {
            throw problem(FileManager.default.fileExists(atPath: data) ? "not a folder" : "no such folder")
        }
        let bytes: [UInt8]
        do { bytes = try ReadableFile.contents(of: file) } catch let error as FileError {
            throw problem("cannot read meta.json (\(error.reason))")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(bytes)) } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "not valid JSON"
            throw problem("meta.json is not valid JSON (\(detail))")
        }
        guard let info = object as? [String: Any] else { throw problem("meta.json is not a JSON object") }
        var values: [Int] = []
        for key in ["batch", "batches", "train", "test"] {
            guard let n = info[key] as? NSNumber, String(cString: n.objCType) != "c", let v = Int(exactly: n.doubleValue), v >= 1 else {
                throw problem("meta.json's '\(key)' is \(info[key].map { "\($0)" } ?? "missing"), it must be a whole number >= 1")
            }
            values.append(v)
        }
        return (values[0], values[1], values[2], values[3])
    }

    /// `--warmup` steps, then `--batches` (0: all) timed steps of `model` with Adam 1e-3 on the export's batch order.
    private func convnet(_ model: Sequential, on device: Device) throws {
        let (batch, epochBatches, trainCount, _) = try meta()
        let trainY = try load("train-y.f32", [trainCount], on: device)
        try trainY.checkLabels(classes: 10, op: "train-y.f32")   // once: the batches' losses then need no read back
        let order = try batchOrder(epochBatches, batch, train: trainCount, on: device)
        let timed = batches == 0 ? epochBatches : Swift.min(batches, epochBatches)
        // The images as bytes (a quarter of the memory, the same values; PeerBenchImages), as `myelin train` keeps them.
        let path = URL(fileURLWithPath: data ?? "").appendingPathComponent("train-x.f32").path
        if !fit, !floatImages, let images = try PeerBenchImages.load(path, rows: trainCount, rowSize: 784) {
            let rows = try order.toArray().map { Int($0) }
            let (trainSeconds, finalLoss, launches) = try timeTraining(model, available: epochBatches, timed: timed, on: device) { i in
                let r = rows[(i * batch)..<((i + 1) * batch)]
                return (try images.batch(r, on: device), try trainY.gather(rows: r.map { $0 }))
            }
            printJSON(["device": device.name, "model": workload, "batches": timed,
                       "train_samples_per_s": Double(timed * batch) / trainSeconds, "final_loss": Double(finalLoss),
                       "launches_per_step": launches, "images": "bytes"])
            return
        }
        let trainX = try load("train-x.f32", [trainCount, 784], on: device)
        if fit {
            try timeFit(model, x: trainX, y: trainY, order: order, batch: batch, timed: timed, on: device)
            return
        }
        let (trainSeconds, finalLoss, launches) = try timeTraining(model, x: trainX, y: trainY, order: order, batch: batch,
                                                                   available: epochBatches, timed: timed, on: device)
        printJSON(["device": device.name, "model": workload, "batches": timed,
                   "train_samples_per_s": Double(timed * batch) / trainSeconds, "final_loss": Double(finalLoss),
                   "launches_per_step": launches])
    }

    private func mlp(on device: Device) throws {
        let (batch, batches, trainCount, testCount) = try meta()
        let trainX = try load("train-x.f32", [trainCount, 784], on: device)
        let trainY = try load("train-y.f32", [trainCount], on: device)
        try trainY.checkLabels(classes: 10, op: "train-y.f32")   // once: the batches' losses then need no read back
        let testX = try load("test-x.f32", [testCount, 784], on: device)
        let testY = try load("test-y.f32", [testCount], on: device)
        let order = try batchOrder(batches, batch, train: trainCount, on: device)

        let model = Sequential {
            Dense(inputSize: 784, outputSize: 512, activation: .relu, weightInit: .heUniform, seed: 1, device: device)
            Dense(inputSize: 512, outputSize: 256, activation: .relu, weightInit: .heUniform, seed: 2, device: device)
            Dense(inputSize: 256, outputSize: 10, seed: 3, device: device)
        }
        let timed = self.batches == 0 ? batches : Swift.min(self.batches, batches)
        if fit {
            try timeFit(model, x: trainX, y: trainY, order: order, batch: batch, timed: timed, on: device)
            return
        }
        let (trainSeconds, finalLoss, launches) = try timeTraining(model, x: trainX, y: trainY, order: order, batch: batch,
                                                                   available: batches, timed: timed, on: device)

        // One untimed chunk first: kernel programs are built on first use, and inference uses kernels training does not.
        _ = try withNoGrad { try model(testX.slice(0..<Swift.min(evalBatch, testCount))).argmax().equal(testY.slice(0..<Swift.min(evalBatch, testCount))).sum().item() }
        let evalStart = DispatchTime.now().uptimeNanoseconds
        var correct = 0
        try withNoGrad {
            for lo in stride(from: 0, to: testCount, by: evalBatch) {
                let range = lo..<Swift.min(lo + evalBatch, testCount)
                let hits = try model(testX.slice(range)).argmax().equal(testY.slice(range)).sum()
                correct += try Int(hits.item())
            }
        }
        let testSeconds = Double(DispatchTime.now().uptimeNanoseconds - evalStart) / 1e9
        printJSON(["device": device.name, "batches": timed, "train_samples_per_s": Double(timed * batch) / trainSeconds,
                   "test_samples_per_s": Double(testCount) / testSeconds, "final_loss": Double(finalLoss),
                   "test_accuracy": Double(correct) / Double(testCount), "launches_per_step": launches])
    }

    /// Adam (lr 1e-3) with softmax cross-entropy on the rows of `order`, one batch per row: `warmup` untimed steps,
    /// then `timed` steps from the epoch's first batch; the seconds they took, the last loss (one read at the end) and
    /// the device's launches per timed step.
    private func timeTraining(_ model: Sequential, x: Tensor, y: Tensor, order: Tensor, batch: Int, available: Int,
                              timed: Int, on device: Device) throws -> (seconds: Double, loss: Float, launches: Double) {
        try timeTraining(model, available: available, timed: timed, on: device) { i in
            let rows = try order.slice(i..<(i + 1)).reshaped([batch])
            return (try x.gather(rows: rows), try y.gather(rows: rows))
        }
    }

    /// The same, with the inputs and labels of batch i from `batchAt(i)`.
    private func timeTraining(_ model: Sequential, available: Int, timed: Int, on device: Device,
                              batchAt: (Int) throws -> (Tensor, Tensor)) throws -> (seconds: Double, loss: Float, launches: Double) {
        let optimizer = try Adam(parameters: model.parameters, learningRate: 1e-3)
        let captured = capture ? try model.captureStep(loss: .softmaxCrossEntropy, optimizer: optimizer) : nil
        func step(_ i: Int) throws -> Tensor {
            let (x, y) = try batchAt(i)
            if let captured { return try captured(x, y) }
            optimizer.zeroGrad()
            let loss = try softmaxCrossEntropy(logits: model(x), labels: y)
            try loss.backward()
            try optimizer.step()
            return loss
        }
        for i in 0..<Swift.min(warmup, available) { _ = try step(i) }
        device.synchronize()
        _ = device.kernelProfile(reset: true)  // the profile (when profiling) of the timed steps only
        let launchesBefore = device.stats.launches
        let start = DispatchTime.now().uptimeNanoseconds
        var loss: Tensor? = nil
        for i in 0..<timed { loss = try step(i) }
        let launches = Double(device.stats.launches - launchesBefore) / Double(max(timed, 1))
        let finalLoss = try loss?.item() ?? .nan
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if profileKernels, let profile = device.kernelProfile(reset: true) { printProfile(profile, steps: timed) }
        return (seconds, finalLoss, launches)
    }

    /// `model.fit` for one epoch over the images of the first `timed` rows of `order`, in that order, with Adam 1e-3,
    /// softmax cross-entropy and the accuracy metric (what `myelin train` does, without validation): an untimed
    /// epoch of `warmup` batches first (captures the step, builds the kernels); then the timed epoch's samples/s,
    /// final loss and launches per step (every launch of the epoch, bookkeeping and epoch end included).
    private func timeFit(_ model: Sequential, x: Tensor, y: Tensor, order: Tensor, batch: Int, timed: Int,
                         on device: Device) throws {
        let optimizer = try Adam(parameters: model.parameters, learningRate: 1e-3)
        func epoch(_ count: Int) throws -> History {
            let rows = try order.slice(0..<count).reshaped([count * batch])
            let data = try Dataset(features: x.gather(rows: rows), targets: y.gather(rows: rows))
            return try model.fit(data, epochs: 1, batchSize: batch, loss: .softmaxCrossEntropy, optimizer: optimizer,
                                 metrics: [.accuracy], shuffle: false, verbosity: .silent, capture: true)
        }
        if warmup > 0 { _ = try epoch(Swift.max(1, Swift.min(warmup, timed))) }
        let rows = try order.slice(0..<timed).reshaped([timed * batch])
        let data = try Dataset(features: x.gather(rows: rows), targets: y.gather(rows: rows))
        device.synchronize()
        let launchesBefore = device.stats.launches
        let start = DispatchTime.now().uptimeNanoseconds
        let history = try model.fit(data, epochs: 1, batchSize: batch, loss: .softmaxCrossEntropy, optimizer: optimizer,
                                    metrics: [.accuracy], shuffle: false, verbosity: .silent, capture: true)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let launches = Double(device.stats.launches - launchesBefore) / Double(timed)
        printJSON(["device": device.name, "model": workload, "batches": timed, "fit": true,
                   "train_samples_per_s": Double(timed * batch) / seconds,
                   "final_loss": history["loss"]?.last ?? .nan, "launches_per_step": launches])
    }

    private func xor(on device: Device) throws {
        let model = Sequential {
            Dense(inputSize: 2, outputSize: 3, activation: .sigmoid, bias: false, weightInit: .uniform(low: 0, high: 1),
                  seed: 1, device: device)
            Dense(inputSize: 3, outputSize: 1, activation: .sigmoid, bias: false, weightInit: .uniform(low: 0, high: 1),
                  seed: 1001, device: device)
        }
        let x = try Tensor([0, 0, 0, 1, 1, 0, 1, 1], shape: [4, 2], on: device)
        let t = try Tensor([0, 1, 1, 0], shape: [4, 1], on: device)
        let optimizer = try SGD(parameters: model.parameters, learningRate: 0.1)
        let captured = capture ? try model.captureStep(loss: .halfSumOfSquares, optimizer: optimizer) : nil
        func step() throws -> Tensor {
            if let captured { return try captured(x, t) }
            optimizer.zeroGrad()
            let loss = try halfSumOfSquares(predictions: model(x), targets: t)
            try loss.backward()
            try optimizer.step()
            return loss
        }
        for _ in 0..<warmup { _ = try step() }
        device.synchronize()
        _ = device.kernelProfile(reset: true)
        let launchesBefore = device.stats.launches
        let start = DispatchTime.now().uptimeNanoseconds
        var loss: Tensor? = nil
        for _ in 0..<steps { loss = try step() }
        let launches = device.stats.launches - launchesBefore
        let finalLoss = try loss?.item() ?? .nan
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if profileKernels, let profile = device.kernelProfile(reset: true) { printProfile(profile, steps: steps) }
        printJSON(["device": device.name, "steps_per_s": Double(steps) / seconds, "final_loss": Double(finalLoss),
                   "launches_per_step": Double(launches) / Double(max(steps, 1))])
    }

    /// The kernel profile of `steps` timed steps: one JSON line per kernel (with its launches and device ms per
    /// step) on stdout, the table on stderr.
    private func printProfile(_ profile: KernelProfile, steps: Int) {
        let perStep = Double(Swift.max(steps, 1))
        for e in profile.entries {
            printJSON(["profile_device": profile.device, "model": workload, "kernel": e.kernel, "count": e.count,
                       "total_ms": e.seconds * 1e3, "mean_us": e.meanSeconds * 1e6,
                       "per_step": Double(e.count) / perStep, "ms_per_step": e.seconds * 1e3 / perStep])
        }
        FileHandle.standardError.write(Data((profile.table + String(format: "\n(%d timed steps: %.3f ms of kernel time per step)\n",
                                                                      steps, profile.totalSeconds * 1e3 / perStep)).utf8))
    }

    /// One JSON line; a NaN or infinite number (a loss that diverged) is written as null, which JSON has.
    private func printJSON(_ object: [String: Any]) {
        let clean = object.mapValues { value -> Any in
            if let d = value as? Double, !d.isFinite { return NSNull() }
            return value
        }
        let data = try! JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
