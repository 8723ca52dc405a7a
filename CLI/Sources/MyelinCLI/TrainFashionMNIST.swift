import ArgumentParser
import Foundation
import Myelin

/// The Fashion-MNIST MLP: 784-512-256-10 with ReLU, Adam 1e-3, batches of 128, a validation split from the
/// training set; prints the test accuracy and a confusion matrix.
struct TrainFashionMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashion-mnist",
        abstract: "An MLP (784-512-256-10, ReLU, Adam) on Fashion-MNIST; prints test accuracy and a confusion matrix.")
    @OptionGroup var device: DeviceOptions
    @OptionGroup var options: TrainOptions
    @Option(help: "Folder with the IDX files (train-images-idx3-ubyte.gz, ...).") var data = MNIST.fashionDirectory.path
    @Option(help: "Hidden layer sizes, comma separated.") var hidden = "512,256"
    @Option(name: .customLong("validation"), parsing: .unconditional, help: "Training images kept for validation.")
    var validationCount = 6000
    @Option(parsing: .unconditional, help: "Use only the first N training images (quick runs).") var limit: Int?

    func validate() throws {
        try checkingValues {
            _ = try ValueCheck.layerSizes(hidden)
            try ValueCheck.atLeast(0, validationCount, name: "--validation")
            if let limit { try ValueCheck.atLeast(1, limit, name: "--limit") }
        }
    }

    func run() throws {
        try options.checkFiles()
        // Every data file's header (both splits), and the image size the model takes, before anything is loaded.
        try MNIST.validateFiles(directory: URL(fileURLWithPath: data), imageSize: (rows: 28, columns: 28))
        let device = try self.device.resolve()
        Device.default = device  // anything made without a device lands there too
        printDevice(device)
        let sizes = try checkingValues { try ValueCheck.layerSizes(hidden) }
        // Sizes against the device's memory before anything is loaded or built: a clear error naming the layer.
        try DenseNetworkMemory(sizes: [784] + sizes + [10], batchSize: options.batchSize ?? 128,
                               optimizerStateTensors: options.optimizerStateTensors(defaultName: "adam")).check(on: device)
        let dir = URL(fileURLWithPath: data)
        let loadStart = Date()
        let (train, validation) = try MNIST.loadTrainValidation(directory: dir, validationCount: validationCount, seed: options.seed,
                                                                limit: limit, on: device)
        let test = try MNIST.load(directory: dir, split: .test, on: device)
        print("Fashion-MNIST from \(data): \(train.count) training, \(validation.count) validation, \(test.count) test images"
              + String(format: " (loaded in %.1f s)", Date().timeIntervalSince(loadStart)))
        let model = Self.model(hidden: sizes, seed: options.seed, on: device)
        let optimizer = try options.makeOptimizer(model.parameters, defaultName: "adam", defaultRate: 1e-3)
        let resumed = try options.loadIfAsked(model, optimizer)
        let plan = try options.resumePlan(resumed, optimizer: optimizer, defaultEpochs: 10)
        let epochs = plan.epochs
        let batch = options.batchSize ?? 128
        print("MLP \(([784] + sizes + [10]).map(String.init).joined(separator: "-")), ReLU, \(model.parameterCount) parameters; \(type(of: optimizer)) lr \(optimizer.learningRate), batch \(batch), \(epochs) epochs")
        let start = Date()
        let history = try model.fit(train, epochs: epochs, batchSize: batch, validation: validation.count > 0 ? validation : nil,
                                    loss: .softmaxCrossEntropy, optimizer: optimizer, metrics: [.accuracy],
                                    baseLearningRate: plan.baseLearningRate, seed: options.seed,
                                    initialEpoch: plan.initialEpoch, history: plan.history,
                                    verbosity: options.verbosity)
        let trainSeconds = Date().timeIntervalSince(start)
        let result = try model.evaluate(test, loss: .softmaxCrossEntropy, metrics: [.accuracy])
        print(String(format: "Training took %.1f s", trainSeconds) + " on \(device.name)")
        print(String(format: "Test accuracy: %.2f%% (%d images), test loss %.4f", 100 * result["accuracy"]!, test.count, result["loss"]!))
        // Confusion matrix: one read of the predicted classes (batch by batch, so the test images stay bytes).
        let predicted = try Tensor.concat(test.batches(size: 256).map { try model.predict($0.features).argmax() }).toArray()
        let labels = test.targets.toArray()
        var matrix = [[Int]](repeating: [Int](repeating: 0, count: 10), count: 10)
        for (p, l) in zip(predicted, labels) {
            // Labels were checked on loading and argmax gives 0..<10, but nothing unchecked reaches an Int.
            guard let li = Int(exactly: l), let pi = Int(exactly: p), (0..<10).contains(li), (0..<10).contains(pi) else {
                throw TrainingError.invalid("unexpected class \(p) predicted for label \(l) (expected whole numbers in 0..<10)")
            }
            matrix[li][pi] += 1
        }
        print(Self.confusionMatrix(matrix, names: MNIST.fashionClassNames))
        try options.writeOutputs(model: model, optimizer: optimizer, epoch: epochs, history: history,
                                 title: "Fashion-MNIST MLP (\(device.name))", baseLearningRate: plan.baseLearningRate ?? 1e-3)
    }

    static func model(hidden: [Int] = [512, 256], seed: UInt64, on device: Device) -> Sequential {
        let sizes = [784] + hidden
        let model = Sequential([])
        for i in 0..<hidden.count {
            model.append(Dense(inputSize: sizes[i], outputSize: sizes[i + 1], activation: .relu, weightInit: .heUniform,
                               seed: seed &+ UInt64(i) &* 100, device: device))
        }
        model.append(Dense(inputSize: sizes.last!, outputSize: 10, seed: seed &+ 999, device: device))
        return model
    }

    /// Rows: true class; columns: predicted class; the last column is the class's recall.
    static func confusionMatrix(_ m: [[Int]], names: [String]) -> String {
        var s = "Confusion matrix (rows: true class, columns: predicted)\n"
        s += "".padding(toLength: 13, withPad: " ", startingAt: 0) + (0..<10).map { String(format: "%5d", $0) }.joined() + "  recall\n"
        for (i, row) in m.enumerated() {
            let total = Swift.max(row.reduce(0, +), 1)
            s += "\(i) " + names[i].padding(toLength: 11, withPad: " ", startingAt: 0)
            s += row.map { String(format: "%5d", $0) }.joined()
            s += String(format: "  %5.1f%%\n", 100 * Double(row[i]) / Double(total))
        }
        return s
    }
}
