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
        return (losses, outputs, decisions.toArray(), perceptron.weight.toArray(), perceptron.bias!.toArray())
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
        for (p, label) in zip(predicted.toArray(), test.targets.toArray()) {
            confusion[Int(label)][Int(p)] += 1                        // rows: true class, columns: predicted
        }
        // The confusion matrix's diagonal is the accuracy evaluate computed.
        let correct = (0..<10).map { confusion[$0][$0] }.reduce(0, +)
        #expect(confusion.joined().reduce(0, +) == 500)
        #expect(abs(Double(correct) / 500 - result["accuracy"]!) < 1e-9, "\(correct)/500 vs \(result["accuracy"]!)")
        #expect(result["accuracy"]! > 0.5, "1000 images, 1 epoch: \(result["accuracy"]!)")
    }
}
