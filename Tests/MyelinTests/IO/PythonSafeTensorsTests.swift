import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Python's safetensors reads Myelin's checkpoints, and Myelin reads files Python wrote.
@Suite(.enabled(if: pythonSafetensorsAvailable, "python3 with safetensors and numpy is not available (scripts/setup --test installs them with pip)"))
struct PythonSafeTensorsTests {
    func expectedJSON(_ entries: [SafeTensorsEntry], metadata: [String: String]) -> Data {
        let tensors = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, ["shape": $0.shape, "values": $0.values.map(Double.init)] as [String: Any]) })
        return try! JSONSerialization.data(withJSONObject: ["tensors": tensors, "metadata": metadata])
    }

    @Test(arguments: TestDevices.all) func pythonReadsMyelinCheckpoints(device: Device) throws {
        let dir = temporaryFolder()
        let url = dir.appendingPathComponent("myelin.safetensors")
        let model = TwoTensorLayer(inputs: 5, outputs: 3, seed: 4, on: device)
        try model.save(to: url, metadata: ["framework": "myelin", "epoch": "7"])
        let entries = try model.namedTensors.map { SafeTensorsEntry(name: $0.0, shape: $0.1.shape, values: try $0.1.toArray()) }
        let expected = dir.appendingPathComponent("expected.json")
        try expectedJSON(entries, metadata: ["framework": "myelin", "epoch": "7", "myelin_layout": "2"]).write(to: expected)
        let (status, output) = try runPythonCheck(["read", url.path, expected.path])
        #expect(status == 0 && output.contains("ok"), "python: \(output)")
        // Byte for byte what Python writes for the same tensors (one metadata key: Python orders several randomly).
        let same = dir.appendingPathComponent("python.safetensors")
        try SafeTensors.save(model.namedTensors, metadata: ["epoch": "7"], to: url)
        try expectedJSON(entries, metadata: ["epoch": "7"]).write(to: expected)
        let (s2, o2) = try runPythonCheck(["write-same", same.path, expected.path])
        #expect(s2 == 0, "python: \(o2)")
        #expect(try Data(contentsOf: same) == Data(contentsOf: url), "Myelin's bytes differ from Python safetensors' bytes")
    }

    @Test func myelinReadsPythonFiles() throws {
        let dir = temporaryFolder()
        let url = dir.appendingPathComponent("python.safetensors")
        let (status, output) = try runPythonCheck(["write", url.path])
        #expect(status == 0, "python: \(output)")
        let file = try SafeTensors.load(url)
        #expect(file.metadata == ["written_by": "python safetensors"])
        #expect(file["0.weight"]?.shape == [2, 3])
        expectClose(file["0.weight"]!.values, (0..<6).map { (Double($0) - 2.5) / 4 }, rtol: 0, atol: 0)
        #expect(file["0.bias"]?.values == [1.5, -2.25, 3.0])
        expectClose(file["2.running_mean"]!.values, (0..<7).map { -1 + 2 * Double($0) / 6 }, rtol: 1e-6, atol: 1e-7)
        #expect(file["scalar"]?.shape == [] && file["scalar"]?.values == [0.125])
    }
}
