import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A training checkpoint's optimizer state must resume correctly or be refused: not stored narrower than F32, and
/// consistent (second moments >= 0, never 0 beside a first moment far from 0); a resumed run whose first epoch's
/// loss is far above the history's last one is warned about.
@Suite struct OptimizerStateResumeTests {
    private func model() -> Sequential {
        Sequential { Dense(inputSize: 3, outputSize: 2, seed: 1, device: .cpu) }
    }

    /// A checkpoint of a model after three Adam steps (so every slot is set), with AMSGrad when asked.
    private func adamCheckpoint(amsgrad: Bool = false) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("adam-\(UUID().uuidString).safetensors")
        let m = model()
        let adam = try Adam(parameters: m.parameters, learningRate: 0.01, amsgrad: amsgrad)
        let x = try Tensor(testValues(4 * 3, seed: 2), shape: [4, 3], on: .cpu)
        let y = try Tensor(testValues(4 * 2, seed: 3), shape: [4, 2], on: .cpu)
        for _ in 0..<3 {
            adam.zeroGrad()
            try meanSquaredError(predictions: m(x), targets: y).backward()
            try adam.step()
        }
        try TrainingCheckpoint.save(model: m, optimizer: adam, epoch: 1, seed: 3, to: url)
        return url
    }

    /// Rewrites the safetensors file at `url` with `change` applied to the values, storing the tensors named in
    /// `half` as F16 (IEEE binary16, as PyTorch's `.half()` stores them).
    private func rewrite(_ url: URL, half: Set<String> = [], change: (inout [String: [Float]]) -> Void = { _ in }) throws {
        let file = try SafeTensors.load(url)
        var values = Dictionary(uniqueKeysWithValues: file.entries.map { ($0.name, $0.values) })
        change(&values)
        var header: [String: Any] = ["__metadata__": file.metadata]
        var payload: [UInt8] = []
        for e in file.entries.sorted(by: { $0.name < $1.name }) {
            let v = values[e.name]!
            let bytes: [UInt8] = half.contains(e.name)
                ? v.flatMap { f in withUnsafeBytes(of: Float16(f).bitPattern.littleEndian) { Array($0) } }
                : v.flatMap { f in withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) } }
            header[e.name] = ["dtype": half.contains(e.name) ? "F16" : "F32", "shape": e.shape,
                              "data_offsets": [payload.count, payload.count + bytes.count]]
            payload += bytes
        }
        var json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        var out = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json
        out += payload
        try Data(out).write(to: url)
    }

    private func load(_ url: URL, amsgrad: Bool = false) throws {
        let m = model()
        try TrainingCheckpoint.load(from: url, into: m, optimizer: try Adam(parameters: m.parameters, amsgrad: amsgrad))
    }

    @Test func optimizerStateNarrowerThanF32IsRefusedNamingFileAndTensor() throws {
        let url = try adamCheckpoint()
        defer { try? FileManager.default.removeItem(at: url) }
        try rewrite(url)   // all F32 through the test's own writer: loads
        try load(url)
        for name in ["optimizer.0.exp_avg_sq", "optimizer.1.exp_avg"] {
            try rewrite(url, half: [name])
            expectCheckpointError({ try load(url) }, contains: [url.path, "'\(name)'", "F16", "narrower than F32"])
        }
        // Weights in half precision are fine (converted), and so is the whole file without an optimizer to resume.
        try rewrite(url, half: ["0.weight"])
        try load(url)
        try rewrite(url, half: ["optimizer.0.exp_avg_sq"])
        try TrainingCheckpoint.load(from: url, into: model(), optimizer: nil)
    }

    @Test func inconsistentSecondMomentsAreRefused() throws {
        let url = try adamCheckpoint(amsgrad: true)
        defer { try? FileManager.default.removeItem(at: url) }
        let original = try SafeTensors.load(url), bytes = try Data(contentsOf: url)
        // Each case changes the original file (rewrite reads what is at `url`).
        func rewrite(_ change: (inout [String: [Float]]) -> Void) throws {
            try bytes.write(to: url)
            try self.rewrite(url, change: change)
        }
        func values(_ name: String) -> [Float] { original.entries.first { $0.name == name }!.values }
        #expect(values("optimizer.0.exp_avg").allSatisfy { $0 != 0 }, "the test needs non-zero first moments")
        try load(url, amsgrad: true)

        // What F16 does to Adam: a small second moment flushed to exactly 0 beside a first moment that is not 0.
        try rewrite { $0["optimizer.0.exp_avg_sq"]![4] = 0 }
        expectCheckpointError({ try load(url, amsgrad: true) },
                              contains: [url.path, "'optimizer.0.exp_avg_sq'", "is 0 at element 4", "'optimizer.0.exp_avg'"])
        // A zero second moment with a zero first moment is what a gradient of 0 gives: accepted.
        try rewrite { $0["optimizer.0.exp_avg_sq"]![4] = 0; $0["optimizer.0.exp_avg"]![4] = 0; $0["optimizer.0.max_exp_avg_sq"]![4] = 0 }
        try load(url, amsgrad: true)
        // A negative second moment.
        try rewrite { $0["optimizer.1.exp_avg_sq"]![1] = -1e-6 }
        expectCheckpointError({ try load(url, amsgrad: true) },
                              contains: [url.path, "'optimizer.1.exp_avg_sq'", "at element 1", "never negative"])
        // An AMSGrad maximum below the second moment it bounds.
        try rewrite { $0["optimizer.0.max_exp_avg_sq"]![2] = values("optimizer.0.exp_avg_sq")[2] / 2 }
        expectCheckpointError({ try load(url, amsgrad: true) },
                              contains: [url.path, "'optimizer.0.max_exp_avg_sq'", "at element 2", "running maximum"])
    }

    @Test func theResumeWarningRule() {
        #expect(TrainingCheckpoint.resumeWarning(epoch: 4, previous: 0.31, resumed: 0.29) == nil)
        #expect(TrainingCheckpoint.resumeWarning(epoch: 4, previous: 0.31, resumed: 0.6) == nil)
        #expect(TrainingCheckpoint.resumeWarning(epoch: 4, previous: 0.001, resumed: 0.04) == nil, "a tiny loss has slack")
        let w = TrainingCheckpoint.resumeWarning(epoch: 4, previous: 0.31, resumed: 466)
        #expect(w?.contains("loss of epoch 4") == true && w?.contains("466") == true && w?.contains("0.31") == true, "\(w ?? "nil")")
        #expect(TrainingCheckpoint.resumeWarning(epoch: 2, previous: 0.3, resumed: .nan) != nil)
    }

    /// `fit` resumed with a history that ends far below the model's real loss warns once, after the first epoch.
    @Test func fitWarnsWhenTheFirstResumedEpochIsFarOff() throws {
        let m = model()
        let data = try Dataset(features: testValues(8 * 3, seed: 5).map { $0 * 10 }, shape: [8, 3],
                               targets: testValues(8 * 2, seed: 6).map { $0 * 10 }, targetShape: [8, 2], on: .cpu)
        var history = History()
        history.append(epoch: 1, ["loss": 0.002])
        history.append(epoch: 2, ["loss": 0.001])
        var printed = ""
        let sgd = try SGD(parameters: m.parameters, learningRate: 1e-4)
        try m.fit(data, epochs: 4, batchSize: 4, loss: .meanSquaredError, optimizer: sgd, seed: 1, initialEpoch: 2,
                  history: history, verbosity: .epochLines, output: { printed += $0 })
        #expect(printed.components(separatedBy: "warning: the loss of epoch 3, the first after resuming").count == 2, "\(printed)")
        // Resumed from a history that matches: no warning.
        var matching = History()
        matching.append(epoch: 2, ["loss": try meanSquaredError(predictions: m(data.features), targets: data.targets).item()].mapValues(Double.init))
        printed = ""
        try m.fit(data, epochs: 3, batchSize: 4, loss: .meanSquaredError, optimizer: sgd, seed: 1, initialEpoch: 2,
                  history: matching, verbosity: .epochLines, output: { printed += $0 })
        #expect(!printed.contains("warning"), "\(printed)")
    }
}
