import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A Myelin `GPT` is nanoGPT's GPT (scripts/torch_gpt_check.py): PyTorch loads its training checkpoint with
/// `load_state_dict(strict=True)` (the tied `lm_head.weight` included) and gives the same logits within 1e-4; and
/// the other way round, Myelin loads a GPT that PyTorch initialized and saved, and gives PyTorch's logits.
struct GPTParityTests {
    @Test(.enabled(if: pythonTorchAvailable, "python3 cannot import torch and safetensors: run scripts/setup --test"),
          arguments: TestDevices.all)
    func gptMatchesNanoGPT(device: Device) throws {
        try inTemporaryFolder("gptMatchesNanoGPT-\(device.name)") { dir in
            let vocabulary = CharacterVocabulary(text: "abcdefghij, klm.\n")
            let config = GPTConfig(vocabSize: vocabulary.count, blockSize: 11, layers: 2, heads: 3, embedDim: 12)
            let gpt = GPT(config, seed: 41, device: device)
            for (i, (name, t)) in gpt.namedTensors.enumerated() where name != "lm_head.weight" {
                let values = testValues(t.count, seed: 42 &+ UInt64(i)).map { $0 * 0.2 + (name.hasSuffix("ln_1.weight") ? 1 : 0) }
                try gpt.setTensor(name, Tensor(values, shape: t.shape, on: device))
            }
            let optimizer = try AdamW(groups: gpt.parameterGroups(weightDecay: 0.1))
            let checkpoint = dir.appendingPathComponent("gpt.safetensors")
            try TrainingCheckpoint.save(model: gpt, optimizer: optimizer, epoch: 0, seed: 1,
                                        metadata: gpt.metadata(vocabulary: vocabulary), to: checkpoint)
            let tokens = try Tensor((0..<22).map { Float(($0 * 7 + 3) % vocabulary.count) }, shape: [2, 11], on: device)
            try TorchInteropTests.writeJSON(tokens, to: dir.appendingPathComponent("tokens.json"))
            try TorchInteropTests.writeJSON(gpt(tokens), to: dir.appendingPathComponent("logits.json"))
            let (status, output) = try runPythonScript("scripts/torch_gpt_check.py", [
                checkpoint.path, dir.appendingPathComponent("tokens.json").path, dir.appendingPathComponent("logits.json").path, dir.path])
            print("scripts/torch_gpt_check.py (\(device)):\n" + output, terminator: "")
            #expect(status == 0, "\(device): torch_gpt_check.py:\n\(output)")
            #expect(output.contains("strict load OK") && output.contains("lm_head tied: True"), "\(output)")
            // PyTorch -> Myelin.
            let (fromTorch, torchVocabulary) = try GPT.load(from: dir.appendingPathComponent("torch_gpt.safetensors"), device: device)
            #expect(torchVocabulary == vocabulary && fromTorch.config == config)
            let expected = try TorchInteropTests.readJSON(dir.appendingPathComponent("torch_logits.json"))
            #expect(expected.shape == [2, 11, vocabulary.count])
            expectClose(try fromTorch(tokens).toArray(), expected.values, rtol: 0, atol: 1e-4, "PyTorch's GPT in Myelin on \(device)")
        }
    }
}
