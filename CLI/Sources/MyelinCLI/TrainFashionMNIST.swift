import ArgumentParser
import Foundation
import Myelin
import MyelinMPI

/// The models `myelin train fashion-mnist` trains.
enum FashionModel: String, ExpressibleByArgument, CaseIterable {
    case mlp, cnn, resnet
}

extension FashionModel {
    /// Checks `--hidden` (the mlp's sizes) and `--depth` (the resnet's blocks per stage) against the model.
    func checkShapeOptions(hidden: String?, depth: Int?) throws {
        if let hidden {
            guard self == .mlp else { throw ValidationError("--hidden sets the mlp's layers; the \(rawValue) model has none to set") }
            _ = try ValueCheck.layerSizes(hidden)
        }
        if let depth {
            guard self == .resnet else { throw ValidationError("--depth sets the resnet's blocks per stage; use it with --model resnet") }
            try ValueCheck.atLeast(1, depth, name: "--depth")
        }
    }
}

extension Whitening.Method: @retroactive ExpressibleByArgument {}

/// Fashion-MNIST with a choice of model, each with its own recipe (every default can be changed by an option):
/// - `mlp`: 784-512-256-10 with ReLU, Adam 1e-3, no schedule, no augmentation, 10 epochs.
/// - `cnn`: `ConvNets.fashionCNN`, AdamW 1e-3 (weight decay 0.01), cosine schedule set every batch, no augmentation
///   (in 10 epochs crops and flips leave this small network underfitted: 90.9% against 92.1% without, on the CPU device), 10 epochs.
/// - `resnet`: `ConvNets.resnet(depth: 2)` (ResNet-14), SGD with Nesterov momentum 0.9, lr 0.1, weight decay 5e-4,
///   1 epoch of linear warm-up then cosine, set every batch, random crops and flips, 15 epochs.
/// All use batches of 128 and a validation split from the training set, and print the test accuracy and a
/// confusion matrix.
struct TrainFashionMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashion-mnist",
        abstract: "Fashion-MNIST with an MLP, a CNN or a ResNet; prints test accuracy and a confusion matrix.",
        discussion: """
            Recipes (each option overrides its part); all: batch 128, 6000 validation images.
              mlp: 784-512-256-10 ReLU; adam lr 1e-3; no schedule, no augmentation; 10 epochs.
              cnn: conv32-BN-ReLU-pool, conv64-BN-ReLU-pool, dense 128, dense 10; adamw lr 1e-3, weight decay 0.01; cosine schedule per batch, no warm-up; no augmentation; 10 epochs.
              resnet: CIFAR-style ResNet, --depth 2 (ResNet-14); nesterov (momentum 0.9) lr 0.1, weight decay 5e-4; 1 warm-up epoch, then cosine per batch; random crop + flip; 15 epochs.
            Data-parallel on Open MPI: mpirun -np 2 myelin train fashion-mnist --distributed [--device opencl:local]
              (--batch-size is the global batch, split over the ranks; only rank 0 prints and writes files).
            """)
    @OptionGroup var device: DeviceOptions
    @OptionGroup var options: TrainOptions
    @Option(help: "The model: mlp, cnn or resnet.") var model: FashionModel = .mlp
    @Flag(help: "Train data-parallel over the ranks of mpirun (each rank on its share of every batch; --device opencl:local gives rank r of a machine opencl:r).")
    var distributed = false
    @Option(name: .customLong("bucket-mb"), parsing: .unconditional, help: "With --distributed: gradient MiB per allreduce (default 25).")
    var bucketMB: Double?
    @Option(help: "Hidden layer sizes of the mlp, comma separated (default 512,256).") var hidden: String?
    @Option(parsing: .unconditional, help: "Residual blocks per stage of the resnet: 1 is ResNet-8, 2 ResNet-14, 3 ResNet-20 (default 2).")
    var depth: Int?
    @Flag(inversion: .prefixedNo,
          help: "Random crops (2-pixel zero padding) and horizontal flips of the training images, on the device (default: on for resnet, off for mlp and cnn).")
    var augment: Bool?
    @Option(help: "Learning-rate schedule: none, or cosine (linear warm-up over --warmup epochs, then cosine down to 0 at the last epoch, set every batch). Default: cosine for cnn and resnet, none for mlp.")
    var schedule: String?
    @Option(parsing: .unconditional, help: "Warm-up epochs of the cosine schedule, fractions allowed (default: resnet 1, cnn 0).")
    var warmup: Double?
    @Option(help: "Folder with the IDX files (train-images-idx3-ubyte.gz, ...).") var data = MNIST.fashionDirectory.path
    @Option(name: .customLong("validation"), parsing: .unconditional, help: "Training images kept for validation.")
    var validationCount = 6000
    @Option(parsing: .unconditional, help: "Use only the first N training images (quick runs).") var limit: Int?
    @Option(help: "Whiten the images: zca or pca, fitted on the training part (mean, covariance, its eigendecomposition), applied on the device to every split.")
    var whiten: Whitening.Method?
    @Option(name: .customLong("whiten-epsilon"), parsing: .unconditional,
            help: "Added to the covariance's eigenvalues before whitening (pixels in [0, 1]; default 0.1).")
    var whitenEpsilon: Double?

    /// The recipe of `model` with the options applied.
    struct Recipe {
        var optimizer: String
        var learningRate: Float
        var weightDecay: Float?
        var epochs: Int
        var cosine: Bool
        var warmup: Double
        var augment: Bool
    }

    var recipe: Recipe {
        var r: Recipe
        switch model {
        case .mlp: r = Recipe(optimizer: "adam", learningRate: 1e-3, weightDecay: nil, epochs: 10, cosine: false, warmup: 0, augment: false)
        case .cnn: r = Recipe(optimizer: "adamw", learningRate: 1e-3, weightDecay: 0.01, epochs: 10, cosine: true, warmup: 0, augment: false)
        case .resnet: r = Recipe(optimizer: "nesterov", learningRate: 0.1, weightDecay: 5e-4, epochs: 15, cosine: true, warmup: 1, augment: true)
        }
        if let schedule { r.cosine = schedule.lowercased() == "cosine" }
        if let warmup { r.warmup = warmup }
        if let augment { r.augment = augment }
        return r
    }

    func validate() throws {
        try checkingValues {
            try model.checkShapeOptions(hidden: hidden, depth: depth)
            try ValueCheck.atLeast(0, validationCount, name: "--validation")
            if let limit { try ValueCheck.atLeast(1, limit, name: "--limit") }
            if let bucketMB {
                guard distributed else { throw ValidationError("--bucket-mb belongs to --distributed") }
                guard bucketMB > 0, bucketMB.isFinite else { throw ValidationError("--bucket-mb must be a finite number > 0, got \(bucketMB)") }
            }
            if let whitenEpsilon {
                guard whiten != nil else { throw ValidationError("--whiten-epsilon belongs to --whiten zca|pca") }
                guard whitenEpsilon > 0, whitenEpsilon.isFinite else {
                    throw ValidationError("--whiten-epsilon must be a finite number > 0, got \(whitenEpsilon)")
                }
            }
            if let schedule, !["none", "cosine"].contains(schedule.lowercased()) {
                throw ValidationError("unknown schedule '\(schedule)'; choose none or cosine")
            }
            if let warmup {
                guard warmup >= 0, warmup.isFinite else { throw ValidationError("--warmup must be a finite number of epochs >= 0, got \(warmup)") }
                guard recipe.cosine else { throw ValidationError("--warmup belongs to the cosine schedule; add --schedule cosine") }
            }
        }
    }

    func run() throws {
        // Data-parallel: join the ranks first (a clear error without mpirun); ranks other than 0 print nothing.
        let ddp = try distributed ? DistributedDataParallel(bucketBytes: Int((bucketMB ?? 25) * 1_048_576)) : nil
        if let ddp, !ddp.isMainRank { silenceStandardOutput() }
        if ddp?.isMainRank ?? true { try options.checkFiles() }
        // Every data file's header (both splits), and the image size the model takes, before anything is loaded.
        try MNIST.validateFiles(directory: URL(fileURLWithPath: data), imageSize: (rows: 28, columns: 28))
        let device = try ddp != nil ? Device.make(self.device.device.map { try MPILaunch.deviceSpec(parsing: $0) } ?? DeviceSpec.fromEnvironment())
                                    : self.device.resolve()
        Device.default = device  // anything made without a device lands there too
        printDevice(device)
        if let ddp {
            print("Data-parallel on MPI: \(ddp.worldSize) ranks, global batch \(options.batchSize ?? 128) split over them, "
                  + String(format: "gradient buckets of %g MiB", Double(ddp.bucketBytes) / 1_048_576) + " (rank 0 prints)")
        }
        let recipe = self.recipe
        let sizes = try checkingValues { try ValueCheck.layerSizes(hidden ?? "512,256") }
        let depth = self.depth ?? 2
        let batch = options.batchSize ?? 128
        // Sizes against the device's memory before anything is loaded or built: a clear error naming the layer.
        switch model {
        case .mlp:
            try DenseNetworkMemory(sizes: [784] + sizes + [10], batchSize: batch,
                                   optimizerStateTensors: options.optimizerStateTensors(defaultName: recipe.optimizer)).check(on: device)
        case .cnn, .resnet:
            // Parameters, gradients, optimizer state and activations counted from --depth and --batch-size (the
            // error names them); then a batch's largest tensor, a convolution's patch buffer: [batch, 32·9, 14·14]
            // in the cnn's second convolution, [batch, 16·9, 28·28] in the resnet's first stage.
            let slots = options.optimizerStateTensors(defaultName: recipe.optimizer)
            try (model == .cnn ? ConvNets.fashionCNNMemory(batchSize: batch, optimizerStateTensors: slots)
                 : ConvNets.resnetMemory(depth: depth, batchSize: batch, optimizerStateTensors: slots,
                                         options: "--depth \(depth) with --batch-size \(batch)")).check(on: device)
            let patch = model == .cnn ? [batch, 32 * 9, 14 * 14] : [batch, 16 * 9, 28 * 28]
            try device.checkAllocation(shape: patch, for: "the \(model.rawValue)'s largest convolution buffer \(patch) for batches of \(batch) (lower --batch-size)")
        }
        let dir = URL(fileURLWithPath: data)
        let loadStart = Date()
        // The test split is read whole and checked now (a corrupt file fails before the training run, not after
        // it), but it is kept only once training is over and the training images are gone: the process never
        // holds both (7.5 MB less at its peak for Fashion-MNIST).
        let testCount = try MNIST.readSplit(directory: dir, split: .test).images.count
        var splits: (train: Dataset, validation: Dataset)? = try MNIST.loadTrainValidation(
            directory: dir, validationCount: validationCount, seed: options.seed, limit: limit, on: device)
        var whitening: Whitening?
        if let whiten, let (train, validation) = splits {
            // Fitted on the training part only; validation and test images go through the same transform.
            let fitStart = Date()
            let fitted = try Whitening(fitting: train.features, method: whiten, epsilon: whitenEpsilon ?? 0.1)
            splits = (try train.mapFeatures(fitted.transform), try validation.mapFeatures(fitted.transform))
            whitening = fitted
            print("Whitening: \(whiten.rawValue.uppercased()), epsilon \(fitted.epsilon), fitted on \(train.count) training images"
                  + String(format: " and applied to the training and validation images in %.1f s (to the test images after training)",
                           Date().timeIntervalSince(fitStart)))
        }
        print("Fashion-MNIST from \(data): \(splits!.train.count) training, \(splits!.validation.count) validation, \(testCount) test images"
              + String(format: " (loaded in %.1f s)", Date().timeIntervalSince(loadStart)))
        let network: Sequential
        let name: String
        switch model {
        case .mlp:
            network = Self.model(hidden: sizes, seed: options.seed, on: device)
            name = "MLP \(([784] + sizes + [10]).map(String.init).joined(separator: "-")), ReLU"
        case .cnn:
            network = ConvNets.fashionCNN(seed: options.seed, device: device)
            name = "CNN conv3x3(32)-BN-ReLU-maxpool, conv3x3(64)-BN-ReLU-maxpool, dense 3136-128-10"
        case .resnet:
            network = ConvNets.resnet(depth: depth, seed: options.seed, device: device)
            name = "ResNet-\(6 * depth + 2) (\(depth) block\(depth == 1 ? "" : "s") per stage of 16, 32, 64 channels)"
        }
        let optimizer = try options.makeOptimizer(network.parameters, defaultName: recipe.optimizer, defaultRate: recipe.learningRate,
                                                  defaultWeightDecay: recipe.weightDecay)
        let resumed = try options.loadIfAsked(network, optimizer)
        let plan = try options.resumePlan(resumed, optimizer: optimizer, defaultEpochs: recipe.epochs)
        let epochs = plan.epochs
        var schedule: WarmupCosine?
        if recipe.cosine {
            // The default warm-up shrinks to half the run when the run is short; one asked for must fit.
            if warmup != nil && recipe.warmup >= Double(epochs) {
                throw ValidationError("--warmup \(recipe.warmup) must be shorter than the \(epochs) epochs of the run")
            }
            schedule = try WarmupCosine(warmupEpochs: Swift.min(recipe.warmup, Double(epochs) / 2), totalEpochs: Double(epochs))
        }
        let augmentation: Augmentation? = recipe.augment ? .randomCropFlip(padding: 2, imageShape: [1, 28, 28]) : nil
        print("\(name), \(network.parameterCount) parameters; \(type(of: optimizer)) lr \(optimizer.learningRate)"
              + Self.decayText(optimizer) + ", batch \(batch), \(epochs) epochs")
        if model != .mlp || schedule != nil || augmentation != nil { print("Schedule: " + (schedule.map { s in
                (s.warmupEpochs > 0 ? "linear warm-up over \(Self.epochText(s.warmupEpochs)), then " : "")
                + "cosine to 0 at epoch \(epochs), set every batch" } ?? "none (constant rate)")
              + "; augmentation: " + (augmentation.map { "random crop (\($0.padding)-pixel zero padding) + horizontal flip, on the device" } ?? "none")) }
        let start = Date()
        let history: History
        let interrupt = TrainingInterrupt.shared
        interrupt.install()
        do {   // the training and validation images are released at the end of this block
            let (train, validation) = splits!
            splits = nil
            history = try network.fit(train, epochs: epochs, batchSize: batch, validation: validation.count > 0 ? validation : nil,
                                      loss: .softmaxCrossEntropy, optimizer: optimizer, metrics: [.accuracy],
                                      callbacks: options.tensorBoard, schedule: schedule, baseLearningRate: plan.baseLearningRate,
                                      augmentation: augmentation,
                                      seed: options.seed, initialEpoch: plan.initialEpoch, partialEpoch: plan.partialEpoch,
                                      history: plan.history, distributed: ddp, stop: interrupt.stop, verbosity: options.verbosity)
        }
        let title = model == .resnet ? "ResNet-\(6 * depth + 2)" : model.rawValue.uppercased()
        let baseRate = plan.baseLearningRate ?? options.lr ?? recipe.learningRate
        if interrupt.stop.isRequested {
            // Every rank stopped at the same batch; rank 0 alone saves, and no time goes to the test set.
            guard ddp?.isMainRank ?? true else { throw interrupt.exitCode }
            try options.finishInterrupted(model: network, optimizer: optimizer,
                                          position: interrupt.stop.stoppedAt ?? TrainingPosition(epoch: epochs, partialEpoch: nil),
                                          history: history, title: "Fashion-MNIST \(title) (\(device.name))",
                                          baseLearningRate: baseRate, sample: "fashion-mnist")
        }
        let trainSeconds = Date().timeIntervalSince(start)
        if let ddp {
            let steps = Swift.max(ddp.reduceCalls, 1)
            print(String(format: "Gradient allreduce: %.2f MB per step in %.2f ms (%.2f ms of it in MPI_Allreduce, waiting for the slowest rank included), %.1f%% of the training step of %.2f ms",
                         Double(ddp.reducedBytes) / Double(steps) / 1e6, 1000 * ddp.reduceSeconds / Double(steps),
                         1000 * ddp.communicationSeconds / Double(steps), 100 * ddp.reduceSeconds / Swift.max(trainSeconds, 1e-9),
                         1000 * trainSeconds / Double(steps)))
            guard ddp.isMainRank else { return }   // the model is the same on every rank: rank 0 tests and saves
        }
        var test = try MNIST.load(directory: dir, split: .test, on: device)
        if let whitening { test = try test.mapFeatures(whitening.transform) }
        let result = try network.evaluate(test, loss: .softmaxCrossEntropy, metrics: [.accuracy])
        print(String(format: "Training took %.1f s", trainSeconds) + " on \(device.name)")
        print(String(format: "Test accuracy: %.2f%% (%d images), test loss %.4f", 100 * result["accuracy"]!, test.count, result["loss"]!))
        // Confusion matrix: one read of the predicted classes (batch by batch, so the test images stay bytes).
        let predicted = try Tensor.concat(test.batches(size: 256).map { try network.predict($0.features).argmax() }).toArray()
        let labels = try test.targets.toArray()
        var matrix = [[Int]](repeating: [Int](repeating: 0, count: 10), count: 10)
        for (p, l) in zip(predicted, labels) {
            // Labels were checked on loading and argmax gives 0..<10, but nothing unchecked reaches an Int.
            guard let li = Int(exactly: l), let pi = Int(exactly: p), (0..<10).contains(li), (0..<10).contains(pi) else {
                throw TrainingError.invalid("unexpected class \(p) predicted for label \(l) (expected whole numbers in 0..<10)")
            }
            matrix[li][pi] += 1
        }
        print(Self.confusionMatrix(matrix, names: MNIST.fashionClassNames))
        try options.writeOutputs(model: network, optimizer: optimizer, epoch: epochs, history: history,
                                 title: "Fashion-MNIST \(title) (\(device.name))", baseLearningRate: baseRate)
        if interrupt.stop.isRequested { throw interrupt.exitCode }   // the signal came after training: all is saved
    }

    /// " (Nesterov momentum 0.9)" for SGD with momentum, then ", weight decay λ" (decoupled for AdamW) when the
    /// optimizer decays its weights.
    static func decayText(_ optimizer: any Optimizer) -> String {
        let decay: Float
        var momentum = ""
        switch optimizer {
        case let o as SGD:
            decay = o.weightDecay
            if o.momentum > 0 { momentum = " (\(o.nesterov ? "Nesterov momentum" : "momentum") \(o.momentum))" }
        case let o as Adam: decay = o.weightDecay
        case let o as Adagrad: decay = o.weightDecay
        case let o as RMSProp: decay = o.weightDecay
        default: decay = 0
        }
        guard decay > 0 else { return momentum }
        return momentum + ", weight decay \(decay)" + (optimizer is AdamW ? " (decoupled)" : "")
    }

    /// "1 epoch", "0.5 epochs".
    static func epochText(_ epochs: Double) -> String {
        (epochs == epochs.rounded() ? String(Int(epochs)) : String(format: "%g", epochs)) + (epochs == 1 ? " epoch" : " epochs")
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

/// Sends this process's standard output to /dev/null (data-parallel ranks other than 0); errors still reach stderr.
func silenceStandardOutput() {
    fflush(nil)
    let null = open("/dev/null", O_WRONLY)
    if null >= 0 { dup2(null, STDOUT_FILENO); close(null) }
}
