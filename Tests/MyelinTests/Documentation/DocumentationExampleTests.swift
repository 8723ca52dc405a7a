import Foundation
import Testing
import Myelin

/// The code of the DocC tutorials (Sources/Myelin/Myelin.docc), run on every device so the articles cannot drift
/// from the API. Each function body is the article's listing, with the device as a parameter and what the article
/// prints returned instead.
@Suite struct DocumentationExampleTests {
    /// PerceptronAND.md: one sigmoid perceptron (two weights and a bias) learns AND; `.step` then gives the
    /// classic perceptron's 0/1 decisions.
    static func andPerceptron(device: Device, steps: Int = 5000)
        throws -> (losses: [Float], outputs: [Float], decisions: [Float], weight: [Float], bias: [Float]) {
        let table = ToyTable.and.table                      // columns x1, x2, y
        let x = try table.tensor(["x1", "x2"], on: device)  // [4, 2]
        let t = try table.tensor(["y"], on: device)         // [4, 1]

        let perceptron = Dense(inputSize: 2, outputSize: 1, activation: .sigmoid,
                               weightInit: .uniform(low: 0, high: 1), seed: 1, device: device)
        let optimizer = try SGD(parameters: perceptron.parameters, learningRate: 0.5)

        var losses: [Float] = []
        for step in 1...steps {
            optimizer.zeroGrad()
            let loss = try halfSumOfSquares(predictions: perceptron(x), targets: t)
            try loss.backward()
            try optimizer.step()
            if step % 1000 == 0 { losses.append(try loss.item()) }
        }
        let outputs = try perceptron.predict(x).toArray()
        let decisions = try x.linear(weight: perceptron.weight, bias: perceptron.bias, activation: .step)
        return (losses, outputs, try decisions.toArray(), try perceptron.weight.toArray(), try perceptron.bias!.toArray())
    }

    @Test(arguments: TestDevices.all)
    func andPerceptronLearnsAND(device: Device) throws {
        let r = try Self.andPerceptron(device: device)
        #expect(r.losses.count == 5 && r.losses.allSatisfy(\.isFinite), "losses \(r.losses)")
        #expect(r.losses.last! < r.losses.first!, "losses \(r.losses)")
        let y = r.outputs
        #expect(y[0] < 0.1 && y[1] < 0.25 && y[2] < 0.25 && y[3] > 0.75, "outputs \(y)")
        #expect(r.decisions == [0, 0, 0, 1])
    }

    /// ApartmentPrices.md: a 2-2-1 network, sigmoid hidden, identity output, MSE on standardized inputs.
    static func apartmentPrices(device: Device, epochs: Int = 3000) throws -> (history: History, predictions: [Float]) {
        let table = ToyTable.apartments.table               // size, age, price
        let raw = try Dataset(features: table.tensor(["size", "age"], on: device),
                              targets: table.tensor(["price"], on: device))
        let scaler = try Standardizer(fitting: raw.features)
        let data = try raw.mapFeatures(scaler.transform)

        let model = Sequential {
            Dense(inputSize: 2, outputSize: 2, activation: .sigmoid,
                  weightInit: .uniform(low: 0, high: 1), seed: 1, device: device)
            Dense(inputSize: 2, outputSize: 1,
                  weightInit: .uniform(low: 0, high: 1), seed: 1001, device: device)
        }
        let optimizer = try SGD(parameters: model.parameters, learningRate: 0.05)
        let history = try model.fit(data, epochs: epochs, batchSize: data.count, loss: .meanSquaredError,
                                    optimizer: optimizer, metrics: [.rmse], seed: 1, verbosity: .silent)
        let predicted = try model.predict(data.features).toArray()
        let newApartment = try Tensor([40, 10], shape: [1, 2], on: device)   // 40 pyeong, 10 years
        let newPrice = try model.predict(scaler.transform(newApartment)).item()
        return (history, predicted + [newPrice])
    }

    @Test(arguments: TestDevices.all)
    func apartmentPricesFit(device: Device) throws {
        let (history, all) = try Self.apartmentPrices(device: device)
        let predictions = Array(all.prefix(10))
        #expect(all[10].isFinite && all[10] > 2 && all[10] < 6, "40 pyeong, 10 years: \(all[10])")
        let rmse = try #require(history["rmse"])
        #expect(rmse.count == 3000)
        #expect(rmse.last! < rmse.first! / 2, "rmse first \(rmse.first!), last \(rmse.last!)")
        let prices = ToyTable.apartments.table.rows.map { $0[2] }
        let error = (zip(prices, predictions).map { pow($0 - Double($1), 2) }.reduce(0, +) / 10).squareRoot()
        #expect(abs(error - rmse.last!) < 0.05, "RMSE of predict \(error) vs last epoch's \(rmse.last!)")
        #expect(error < 0.8, "RMSE \(error) in price units")
    }

    /// XORLab.md: 2-3-1 sigmoid network, no bias, weights uniform in [0, 1), half sum of squares, SGD lr 0.1.
    static func xorLab(device: Device, steps: Int = 20_000) throws -> [Float] {
        let table = ToyTable.xor.table
        let x = try table.tensor(["x1", "x2"], on: device)  // [4, 2]
        let t = try table.tensor(["y"], on: device)         // [4, 1]

        let model = Sequential {
            Dense(inputSize: 2, outputSize: 3, activation: .sigmoid, bias: false,
                  weightInit: .uniform(low: 0, high: 1), seed: 1, device: device)
            Dense(inputSize: 3, outputSize: 1, activation: .sigmoid, bias: false,
                  weightInit: .uniform(low: 0, high: 1), seed: 1001, device: device)
        }
        let optimizer = try SGD(parameters: model.parameters, learningRate: 0.1)

        for _ in 1...steps {
            optimizer.zeroGrad()
            let loss = try halfSumOfSquares(predictions: model(x), targets: t)
            try loss.backward()
            try optimizer.step()
        }
        return try model.predict(x).toArray()
    }

    /// The article's full 20000 steps on the CPU (the CLI's `myelin train xor` prints the same outputs).
    @Test func xorLabSolvesXOR() throws {
        let y = try Self.xorLab(device: .cpu)
        #expect(y[0] < 0.1 && y[3] < 0.1 && y[1] > 0.9 && y[2] > 0.9, "outputs \(y)")
    }

    /// Fewer steps on OpenCL (a launch per op makes 20000 steps slow on PoCL): the same outputs as the CPU.
    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func xorLabMatchesOnOpenCL() throws {
        let cpu = try Self.xorLab(device: .cpu, steps: 500)
        let gpu = try Self.xorLab(device: TestDevices.openCL, steps: 500)
        expectClose(gpu, cpu, rtol: 1e-3, atol: 1e-4, "XOR outputs after 500 steps")
    }

    /// FashionMNIST.md on a slice (1000 training images, 1 epoch instead of 60000 and 10): the article's calls.
    @Test(.enabled(if: ReadmeExampleTests.dataPresent, "Fashion-MNIST is not installed (Debian dataset-fashion-mnist)"),
          arguments: TestDevices.all)
    func fashionMNISTListing(device: Device) throws {
        let (train, validation) = try MNIST.loadTrainValidation(validationCount: 200, seed: 1, limit: 1200, on: device)
        let test = try MNIST.load(split: .test, limit: 500, on: device)

        let model = Sequential {
            Dense(inputSize: 784, outputSize: 512, activation: .relu, weightInit: .heUniform, seed: 1, device: device)
            Dense(inputSize: 512, outputSize: 256, activation: .relu, weightInit: .heUniform, seed: 101, device: device)
            Dense(inputSize: 256, outputSize: 10, seed: 1000, device: device)
        }
        let summary = try model.summary(inputShape: [1, 784])
        #expect(summary.contains("Trainable parameters: 535818"), "\(summary)")

        let optimizer = try Adam(parameters: model.parameters, learningRate: 1e-3)
        let history = try model.fit(train, epochs: 1, batchSize: 128, validation: validation,
                                    loss: .softmaxCrossEntropy, optimizer: optimizer, metrics: [.accuracy],
                                    seed: 1, verbosity: .silent)
        let plot = FileManager.default.temporaryDirectory.appendingPathComponent("docs-fashion-\(device.name).svg")
        try LossPlot.write(history, title: "Fashion-MNIST MLP", to: plot)
        try? FileManager.default.removeItem(at: plot)
        #expect(history.keys.sorted() == ["accuracy", "loss", "val_accuracy", "val_loss"])

        let result = try model.evaluate(test, loss: .softmaxCrossEntropy, metrics: [.accuracy])
        let predicted = try Tensor.concat(test.batches(size: 256).map { try model.predict($0.features).argmax() })
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: 10), count: 10)
        for (p, label) in zip(try predicted.toArray(), try test.targets.toArray()) {
            confusion[Int(label)][Int(p)] += 1                        // rows: true class, columns: predicted
        }
        // The confusion matrix's diagonal is the accuracy evaluate computed.
        let correct = (0..<10).map { confusion[$0][$0] }.reduce(0, +)
        #expect(confusion.joined().reduce(0, +) == 500)
        #expect(abs(Double(correct) / 500 - result["accuracy"]!) < 1e-9, "\(correct)/500 vs \(result["accuracy"]!)")
        #expect(result["accuracy"]! > 0.5, "1000 images, 1 epoch: \(result["accuracy"]!)")

        // Step 5: save the model; the file has the keys of the article's nn.Sequential and loads back.
        let file = temporaryFolder().appendingPathComponent("mlp.safetensors")
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        try model.save(to: file)
        let saved = try SafeTensors.load(file)
        #expect(saved.names.sorted() == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"])
        #expect(saved["0.weight"]?.shape == [512, 784])
        try model.load(from: file)
    }

    /// DeviceModel.md: ops stay on the device until one read; a model moved to the device before its optimizer is
    /// built; after the first step a training step reads nothing back and waits for nothing (the counters are the
    /// device's, shared with tests running at the same time, so the smallest count of a few steps is checked).
    @Test(arguments: TestDevices.all)
    func deviceModelListing(device: Device) throws {
        let x = try Tensor([1, 2, 3, 4], shape: [2, 2], on: device)   // upload
        let y = try (x.matmul(x) + 1).relu()                          // queued on the device, nothing read
        #expect(try y.toArray() == [8, 11, 16, 23])                       // one read

        let moved = Sequential { Dense(inputSize: 2, outputSize: 1, device: .cpu) }
        moved.to(device)                                              // each weight copied once
        let movedOptimizer = try Adam(parameters: moved.parameters)   // then the optimizer
        #expect(movedOptimizer.parameters.allSatisfy { $0.device === device })

        let model = Sequential { Dense(inputSize: 2, outputSize: 3, seed: 1, device: device) }
        let optimizer = try Adam(parameters: model.parameters)
        let batch = try Dataset(features: Tensor.uniform([8, 2], seed: 2, on: device),
                                targets: Tensor(labels: [0, 1, 2, 0, 1, 2, 0, 1], classes: 3, on: device))
        var fewest = (reads: Int.max, waits: Int.max)
        for _ in 0..<5 {
            let before = device.stats
            optimizer.zeroGrad()
            let loss = try softmaxCrossEntropy(logits: model(batch.features), labels: batch.targets)
            try loss.backward()
            try optimizer.step()
            let after = device.stats
            fewest = (min(fewest.reads, after.hostReads - before.hostReads), min(fewest.waits, after.waits - before.waits))
        }
        #expect(fewest.reads == 0 && fewest.waits == 0, "\(device): host reads and waits of a training step: \(fewest)")

        let spec = try DeviceSpec(parsing: "opencl:1")   // what --device and MYELIN_DEVICE accept
        #expect(spec == .opencl(index: 1))
    }

    /// Checkpoints.md: the model of the article, built with seeds (the article's own listing draws them).
    static func checkpointsMLP(seed: UInt64, device: Device) -> Sequential {
        Sequential {
            Dense(inputSize: 4, outputSize: 8, activation: .relu, seed: seed, device: device)
            Dense(inputSize: 8, outputSize: 8, activation: .tanh, seed: seed + 10, device: device)
            Dense(inputSize: 8, outputSize: 3, seed: seed + 20, device: device)
        }
    }

    /// The ```python blocks of an article, in order.
    static func pythonListings(article: String) throws -> [String] {
        let url = repositoryRoot.appendingPathComponent("Sources/Myelin/Myelin.docc/\(article)")
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.components(separatedBy: "```python\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
    }

    /// Checkpoints.md: save, the article's Python (PyTorch loads the file strictly and saves its own state dict,
    /// then loads a training checkpoint without its optimizer keys) when python3 has torch, load back, state
    /// dicts, and a training checkpoint that resumes exactly where training stopped.
    @Test(arguments: TestDevices.all)
    func checkpointsListing(device: Device) throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = Self.checkpointsMLP(seed: 1, device: device)
        try model.save(to: dir.appendingPathComponent("mlp.safetensors"))
        let x = Tensor.uniform([5, 4], low: -1, high: 1, seed: 3, on: device)
        let expected = try model.predict(x).toArray()

        let copy = Self.checkpointsMLP(seed: 100, device: device)
        try copy.loadStateDict(model.stateDict())                 // copy now computes what model computes
        #expect(try copy.predict(x).toArray() == expected)
        #expect(model.namedTensors.map(\.0) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"])

        // Training checkpoint: 3 epochs, save, resume to 10 in a fresh model and optimizer; the same weights as
        // 10 epochs without a stop.
        let train = try Dataset(features: Tensor.uniform([32, 4], low: -1, high: 1, seed: 4, on: device),
                                targets: Tensor.uniform([32, 3], low: -1, high: 1, seed: 5, on: device))
        let optimizer = try Adam(parameters: model.parameters, learningRate: 1e-3)
        let firstHistory = try model.fit(train, epochs: 3, loss: .meanSquaredError, optimizer: optimizer, seed: 1,
                                         verbosity: .silent)
        try TrainingCheckpoint.save(model: model, optimizer: optimizer, epoch: 3, seed: 1, history: firstHistory,
                                    to: dir.appendingPathComponent("run.safetensors"))
        let resumedModel = Self.checkpointsMLP(seed: 200, device: device)
        let resumedOptimizer = try Adam(parameters: resumedModel.parameters, learningRate: 1e-3)
        let resumed = try TrainingCheckpoint.load(from: dir.appendingPathComponent("run.safetensors"),
                                                  into: resumedModel, optimizer: resumedOptimizer)
        let history = try resumedModel.fit(train, epochs: 10, loss: .meanSquaredError, optimizer: resumedOptimizer,
                                           seed: resumed.seed, initialEpoch: resumed.epoch, history: resumed.history,
                                           verbosity: .silent)
        #expect(history.epochs == Array(1...10))
        let straight = Self.checkpointsMLP(seed: 1, device: device)
        let straightOptimizer = try Adam(parameters: straight.parameters, learningRate: 1e-3)
        let straightHistory = try straight.fit(train, epochs: 10, loss: .meanSquaredError, optimizer: straightOptimizer,
                                               seed: 1, verbosity: .silent)
        expectClose(history["loss"]!.map(Float.init), straightHistory["loss"]!, rtol: 1e-6, atol: 1e-7,
                    "\(device): the losses of the resumed run vs 10 epochs without a stop")
        expectClose(try resumedModel.namedTensors.flatMap { try $0.1.toArray() }, try straight.namedTensors.flatMap { try $0.1.toArray() },
                    rtol: 1e-6, atol: 1e-7, "\(device): resumed at epoch 3 vs 10 epochs without a stop")
        let fromTraining = Self.checkpointsMLP(seed: 300, device: device)
        try fromTraining.load(from: dir.appendingPathComponent("run.safetensors"))   // skips the optimizer. keys
        #expect(try fromTraining.predict(x).toArray() == model.predict(x).toArray())

        // The article's Python, run where the article's files are.
        guard pythonTorchAvailable else { return }
        let listings = try Self.pythonListings(article: "Checkpoints.md")
        #expect(listings.count == 2)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", listings.joined(separator: "\n")]
        p.currentDirectoryURL = dir
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "the article's Python failed: \(output)")
        guard p.terminationStatus == 0 else { return }
        let fromTorch = Self.checkpointsMLP(seed: 400, device: device)
        try fromTorch.load(from: dir.appendingPathComponent("from-torch.safetensors"))
        #expect(try fromTorch.predict(x).toArray() == expected, "PyTorch's state dict of Myelin's file loads back unchanged")
    }
}
