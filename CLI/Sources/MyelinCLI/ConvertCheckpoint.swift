import ArgumentParser
import Foundation
import Myelin

/// `myelin convert-checkpoint OLD NEW --model NAME`: rewrites a checkpoint of a sample model written by Myelin
/// before it used PyTorch's layout (see `LegacyCheckpoint`) in the current layout. Model files and training
/// checkpoints (optimizer state included) both convert.
struct ConvertCheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert-checkpoint",
        abstract: "Convert an old-layout Myelin checkpoint (Dense weights [in, out]) of a sample model to the PyTorch layout.",
        discussion: """
            Checkpoints written before Myelin followed PyTorch's layout store each Dense weight [in, out] and number \
            a Sequential's keys by Swift layer. This reads such a file for one of the sample models (xor, and, \
            regression, fashion-mnist with its --hidden sizes) and writes the current layout, which `myelin train \
            --load` and PyTorch's load_state_dict read directly. For your own models, call \
            LegacyCheckpoint.convert(from:to:for:) with a model of the same structure.
            """)
    @Argument(help: "The old checkpoint.") var old: String
    @Argument(help: "Where to write the converted checkpoint (may be the same path).") var new: String
    @Option(help: "The sample model that wrote it: xor, and, regression or fashion-mnist.") var model: String
    @Option(help: "fashion-mnist only: the hidden layer sizes it was trained with.") var hidden = "512,256"

    func validate() throws {
        _ = try checkingValues { try ValueCheck.layerSizes(hidden) }
    }

    func run() throws {
        let structure: Sequential
        switch model.lowercased() {
        case "xor", "and": structure = GateLab.model(seed: 1, on: .cpu)
        case "regression": structure = TrainRegression.model(seed: 1, on: .cpu)
        case "fashion-mnist":
            let sizes = try checkingValues { try ValueCheck.layerSizes(hidden) }
            try DenseNetworkMemory(sizes: [784] + sizes + [10], batchSize: 1, optimizerStateTensors: 0).check(on: .cpu)
            structure = TrainFashionMNIST.model(hidden: sizes, seed: 1, on: .cpu)
        default:
            throw ValidationError("unknown model '\(model)'; choose xor, and, regression or fashion-mnist")
        }
        try LegacyCheckpoint.convert(from: URL(fileURLWithPath: old), to: URL(fileURLWithPath: new), for: structure)
        print("Converted \(old) -> \(new) (layout \(SafeTensors.currentLayout): Dense weights [out, in], PyTorch key numbering)")
    }
}
