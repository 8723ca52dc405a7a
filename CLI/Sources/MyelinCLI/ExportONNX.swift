import ArgumentParser
import Foundation
import Myelin

/// `myelin export-onnx --load CKPT --model mlp|cnn|resnet OUT.onnx`: a Fashion-MNIST model trained by `myelin train
/// fashion-mnist` as an ONNX file (opset 17, float32, dynamic batch) for ONNX Runtime and other ONNX tools.
struct ExportONNXCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-onnx",
        abstract: "Export a Fashion-MNIST model (mlp, cnn, resnet) from a checkpoint to ONNX.",
        discussion: """
            Reads a model file or training checkpoint written by `myelin train fashion-mnist --save` and writes an \
            ONNX model (opset 17, float32 weights, input "input" [batch, 784], output "output" [batch, 10] logits, \
            the batch dimension dynamic), e.g. for onnxruntime:
              python3 -c 'import onnxruntime as ort, numpy as np; s = ort.InferenceSession("model.onnx"); \
            print(s.run(None, {"input": np.zeros((1, 784), np.float32)})[0])'
            Give the same --hidden (mlp) or --depth (resnet) the model was trained with.
            """)
    @Argument(help: "The ONNX file to write.") var output: String
    @Option(help: "The checkpoint or model file to export (safetensors).") var load: String
    @Option(help: "The model: mlp, cnn or resnet.") var model: FashionModel
    @Option(help: "Hidden layer sizes of the mlp, comma separated (default 512,256).") var hidden: String?
    @Option(parsing: .unconditional, help: "Residual blocks per stage of the resnet (default 2).") var depth: Int?

    func validate() throws {
        try checkingValues { try model.checkShapeOptions(hidden: hidden, depth: depth) }
    }

    func run() throws {
        let url = URL(fileURLWithPath: output)
        do { try AtomicFile.checkWritable(url) } catch { throw FileOptionError(message: "output: \(error)") }
        do { _ = try ReadableFile(URL(fileURLWithPath: load)) } catch { throw FileOptionError(message: "--load: \(error)") }
        let network: Sequential
        switch model {
        case .mlp:
            let sizes = try checkingValues { try ValueCheck.layerSizes(hidden ?? "512,256") }
            try DenseNetworkMemory(sizes: [784] + sizes + [10], batchSize: 1, optimizerStateTensors: 0).check(on: .cpu)
            network = TrainFashionMNIST.model(hidden: sizes, seed: 1, on: .cpu)
        case .cnn: network = ConvNets.fashionCNN(seed: 1, device: .cpu)
        case .resnet: network = ConvNets.resnet(depth: depth ?? 2, seed: 1, device: .cpu)
        }
        do { try network.load(from: URL(fileURLWithPath: load)) } catch {
            let shape = model == .mlp ? " with --hidden \(hidden ?? "512,256")" : model == .resnet ? " with --depth \(depth ?? 2)" : ""
            throw FileOptionError(message: "--load: \(error)\n(is it a checkpoint of the \(model.rawValue)\(shape)? give the --model, --hidden or --depth it was trained with)")
        }
        try network.exportONNX(to: url, inputShape: [784])
        let bytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        print("Wrote \(output): the \(model.rawValue) of \(load), \(network.parameterCount) parameters, "
              + String(format: "%.1f MB", Double(bytes) / 1e6) + "; ONNX opset 17, input \"input\" [batch, 784], output [batch, 10] (logits)")
    }
}
