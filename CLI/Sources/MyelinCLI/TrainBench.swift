import ArgumentParser
import Foundation
import Myelin

/// `myelin bench train`: one epoch of the Fashion-MNIST MLP per device (samples/s), the XOR lab (steps/s),
/// and the peak resident memory.
struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Times an epoch of the Fashion-MNIST MLP per device, the XOR lab, and peak memory.")

    @Option(help: "Devices to time, comma separated (default: cpu and every OpenCL device).") var devices: String?
    @Option(parsing: .unconditional, help: "Training images in the timed epoch.") var samples = 60_000
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Batch size.") var batchSize = 128
    @Option(name: .customLong("xor-steps"), parsing: .unconditional, help: "XOR lab steps on the CPU.") var xorSteps = 20_000
    @Option(name: .customLong("xor-steps-opencl"), parsing: .unconditional, help: "XOR lab steps on OpenCL devices (launch-bound).") var xorStepsOpenCL = 2_000
    @Option(help: "Folder with Fashion-MNIST's IDX files.") var data = MNIST.fashionDirectory.path
    @Flag(help: "Print the results as JSON.") var json = false
    @Flag(inversion: .prefixedNo, help: "Capture the training step and replay it (fit(capture:), captureStep).") var capture = true

    func validate() throws {
        try checkingValues {
            try ValueCheck.atLeast(1, samples, name: "--samples")
            try ValueCheck.atLeast(1, batchSize, name: "--batch-size")
            try ValueCheck.atLeast(1, xorSteps, name: "--xor-steps")
            try ValueCheck.atLeast(1, xorStepsOpenCL, name: "--xor-steps-opencl")
        }
        for name in (devices ?? "").split(separator: ",") { _ = try DeviceSpec(parsing: String(name)) }
    }

    func run() throws {
        let chosen: [Device]
        if let devices {
            chosen = try devices.split(separator: ",").map { try Device.make(DeviceSpec(parsing: String($0))) }
        } else {
            chosen = [.cpu] + (0..<OpenCLPlatforms.devices().count).compactMap { try? Device.make(.opencl(index: $0)) }
        }
        var results: [[String: Any]] = []
        for device in chosen {
            Device.default = device
            let (train, _) = try MNIST.loadTrainValidation(directory: URL(fileURLWithPath: data), validationCount: 0, seed: 1,
                                                           limit: samples, on: device)
            let model = TrainFashionMNIST.model(seed: 1, on: device)
            let adam = try Adam(parameters: model.parameters, learningRate: 1e-3)
            // Warm-up: kernels built and buffers pooled.
            try model.fit(train.subset(0..<Swift.min(1024, train.count)), epochs: 1, batchSize: batchSize, loss: .softmaxCrossEntropy,
                          optimizer: adam, metrics: [.accuracy], verbosity: .silent, capture: capture)
            device.synchronize()
            let start = Date()
            let h = try model.fit(train, epochs: 1, batchSize: batchSize, loss: .softmaxCrossEntropy, optimizer: adam,
                                  metrics: [.accuracy], verbosity: .silent, capture: capture)
            device.synchronize()
            let seconds = Date().timeIntervalSince(start)
            let mlp: [String: Any] = ["device": device.name, "details": device.details, "benchmark": "fashion-mnist-mlp-epoch",
                                      "samples": train.count, "batch_size": batchSize, "seconds": seconds,
                                      "samples_per_second": Double(train.count) / seconds, "loss": h["loss"]![0],
                                      "accuracy": h["accuracy"]![0], "peak_rss_mib": Self.peakMiB()]
            results.append(mlp)
            if !json {
                print("MLP 784-512-256-10 epoch  " + device.name.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: "%6d samples  %6.2f s  %8.0f samples/s  (train acc %.3f)  peak RSS %.0f MiB",
                             train.count, seconds, Double(train.count) / seconds, h["accuracy"]![0], Self.peakMiB()))
            }
            let steps = device.isOpenCL ? xorStepsOpenCL : xorSteps
            let xorSeconds = try Self.xorLab(on: device, steps: steps, capture: capture)
            let xor: [String: Any] = ["device": device.name, "benchmark": "xor-lab", "steps": steps, "seconds": xorSeconds,
                                      "steps_per_second": Double(steps) / xorSeconds, "peak_rss_mib": Self.peakMiB()]
            results.append(xor)
            if !json {
                print("XOR lab 2-3-1             " + device.name.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: "%6d steps    %6.2f s  %8.0f steps/s",
                             steps, xorSeconds, Double(steps) / xorSeconds))
            }
        }
        if json {
            let object: [String: Any] = ["results": results, "peak_rss_mib": Self.peakMiB()]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "Peak resident memory of this process: %.0f MiB", Self.peakMiB()))
        }
    }

    /// Seconds for `steps` full-batch steps of the XOR lab (SGD, lr 0.1), after a short warm-up.
    static func xorLab(on device: Device, steps: Int, capture: Bool = false) throws -> Double {
        let model = GateLab.model(seed: 1, on: device)
        let sgd = try SGD(parameters: model.parameters, learningRate: 0.1)
        let table = ToyTable.xor.table
        let x = try table.tensor(["x1", "x2"], on: device), t = try table.tensor(["y"], on: device)
        let captured = capture ? try model.captureStep(loss: .halfSumOfSquares, optimizer: sgd) : nil
        func step() throws {
            if let captured { try captured(x, t); return }
            sgd.zeroGrad()
            try halfSumOfSquares(predictions: model(x), targets: t).backward()
            try sgd.step()
        }
        for _ in 0..<20 { try step() }
        device.synchronize()
        let start = Date()
        for _ in 0..<steps { try step() }
        device.synchronize()
        return Date().timeIntervalSince(start)
    }

    /// Peak resident set size of this process in MiB (getrusage; Linux reports KiB).
    static func peakMiB() -> Double {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
