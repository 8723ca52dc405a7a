import ArgumentParser
import Foundation
import Myelin

/// `myelin bench mlp`: the time of one training step of the Fashion-MNIST-sized MLP
/// (784-512-256-10, ReLU, batch 128, Adam, softmax cross-entropy) on each device.
struct MLPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlp", abstract: "Step time of the 784-512-256-10 MLP (batch 128, Adam) on each device.")

    @Option(parsing: .unconditional, help: "Timed steps per run.") var steps = 50
    @Option(parsing: .unconditional, help: "Runs (the median is reported).") var runs = 5
    @Option(parsing: .unconditional, help: "Batch size.") var batchSize = 128
    @Option(help: "Devices to measure, comma separated (cpu, opencl, opencl:N).") var devices = "cpu,opencl"
    @Flag(help: "Print JSON instead of a table.") var json = false

    func validate() throws {
        try checkingValues {
            try ValueCheck.atLeast(1, steps, name: "--steps")
            try ValueCheck.atLeast(1, runs, name: "--runs")
            try ValueCheck.atLeast(1, batchSize, name: "--batch-size")
        }
        for name in devices.split(separator: ",") { _ = try DeviceSpec(parsing: String(name)) }
    }

    struct Row: Codable {
        var device: String
        var stepMilliseconds: Double
        var samplesPerSecond: Double
        /// Device buffers allocated after the first step (0 means the pool served every one).
        var allocationsAfterFirstStep: Int
        /// Host reads during the timed steps (0 means nothing came back to the host).
        var hostReadsDuringSteps: Int
        /// Queue drains during the timed steps (the one that ends each run is not counted).
        var waitsDuringSteps: Int
    }

    func run() throws {
        var rows: [Row] = []
        for name in devices.split(separator: ",") {
            let spec = try DeviceSpec(parsing: String(name))
            guard let device = try? Device.make(spec) else {
                print("\(name): not available (\(Device.availableNames().joined(separator: ", ")))")
                continue
            }
            rows.append(try measure(on: device))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
            return
        }
        print("MLP 784-512-256-10 ReLU, batch \(batchSize), Adam 1e-3, softmax cross-entropy; median of \(runs) runs of \(steps) steps")
        print("device     ms/step   samples/s   new buffers after step 1   host reads   queue waits")
        for r in rows {
            print(String(format: "%-9@ %8.3f %11.0f %26d %12d %13d", r.device as NSString, r.stepMilliseconds,
                         r.samplesPerSecond, r.allocationsAfterFirstStep, r.hostReadsDuringSteps, r.waitsDuringSteps))
        }
    }

    private func measure(on device: Device) throws -> Row {
        try device.checkAllocation(shape: [batchSize, 784 + 2 * (512 + 256 + 10)], for: "--batch-size \(batchSize): a batch's activations")
        let model = Sequential {
            Dense(inputSize: 784, outputSize: 512, activation: .relu, seed: 1, device: device)
            Dense(inputSize: 512, outputSize: 256, activation: .relu, seed: 2, device: device)
            Dense(inputSize: 256, outputSize: 10, seed: 3, device: device)
        }
        let optimizer = try Adam(parameters: model.parameters, learningRate: 1e-3)
        let x = Tensor.uniform([batchSize, 784], seed: 7, on: device)
        var rng = SeededGenerator(seed: 9)
        let labels = Tensor((0..<batchSize).map { _ in Float(rng.next() % 10) }, on: device)

        func step() throws {
            optimizer.zeroGrad()
            let loss = try softmaxCrossEntropy(logits: model(x), labels: labels)
            try loss.backward()
            try optimizer.step()
        }
        try step()
        device.synchronize()
        let afterFirst = device.stats
        var times: [Double] = []
        var waits = 0
        for _ in 0..<runs {
            let before = device.stats
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<steps { try step() }
            waits += device.stats.waits - before.waits
            device.synchronize()
            let end = DispatchTime.now().uptimeNanoseconds
            times.append(Double(end - start) / 1e6 / Double(steps))
        }
        let stats = device.stats
        let median = times.sorted()[times.count / 2]
        return Row(device: device.name, stepMilliseconds: median, samplesPerSecond: Double(batchSize) / median * 1000,
                   allocationsAfterFirstStep: stats.allocations - afterFirst.allocations,
                   hostReadsDuringSteps: stats.hostReads - afterFirst.hostReads, waitsDuringSteps: waits)
    }
}
