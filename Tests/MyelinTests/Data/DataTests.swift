import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import MyelinCore
@testable import Myelin

/// A fresh temporary folder for one test.
func temporaryFolder(_ name: String = #function) -> URL {
    let safe = name.filter { $0.isLetter || $0.isNumber }
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("myelin-\(safe)-\(UInt32.random(in: 0...UInt32.max))")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func expectDataError(_ body: () throws -> Void, contains parts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected an error containing \(parts)", sourceLocation: sourceLocation)
    } catch {
        let text = "\(error)"
        for p in parts where !text.contains(p) {
            Issue.record("error \"\(text)\" does not mention \"\(p)\"", sourceLocation: sourceLocation)
        }
    }
}

@Suite struct IDXTests {
    /// Four 2x3 images with pixel values 0, 10, 20, ... and labels 3, 1, 4, 1.
    static let pixels: [UInt8] = (0..<24).map { UInt8($0 * 10) }
    static let images = IDX.encode(uint8: pixels, shape: [4, 2, 3])
    static let labels = IDX.encode(uint8: [3, 1, 4, 1], shape: [4])

    func write(_ bytes: [UInt8], _ name: String, in dir: URL) {
        try! Data(bytes).write(to: dir.appendingPathComponent(name))
    }

    @Test func rawAndGzipFilesReadTheSame() throws {
        let dir = temporaryFolder()
        write(Self.images, "raw-idx3", in: dir)
        write(Gzip.compress(Self.images), "gz-idx3.gz", in: dir)
        for name in ["raw-idx3", "gz-idx3.gz"] {
            let a = try IDX.read(dir.appendingPathComponent(name))
            #expect(a.shape == [4, 2, 3])
            #expect(a.type == .uint8)
            #expect(a.floats() == Self.pixels.map(Float.init))
            expectClose([a.floats(scale: 1 / 255)[23]], [230.0 / 255], rtol: 1e-6)
        }
    }

    @Test func multiByteTypesAreBigEndian() throws {
        // int16 [2]: 0x0102, 0xFFFE; float32 [1]: 1.5
        let i16: [UInt8] = [0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]
        #expect(try IDX.decode(i16, source: "i16").floats() == [258, -2])
        let f32: [UInt8] = [0, 0, 0x0D, 1, 0, 0, 0, 1] + withUnsafeBytes(of: Float(1.5).bitPattern.bigEndian) { Array($0) }
        #expect(try IDX.decode(f32, source: "f32").floats() == [1.5])
    }

    @Test func wrongMagicNamesTheFile() throws {
        let dir = temporaryFolder()
        var bad = Self.images
        bad[2] = 0x42
        write(bad, "bad-magic", in: dir)
        expectDataError({ _ = try IDX.read(dir.appendingPathComponent("bad-magic")) }, contains: ["bad-magic", "magic number", "0x00004203"])
        write(Array("hello, world".utf8), "text.gz", in: dir)
        expectDataError({ _ = try IDX.read(dir.appendingPathComponent("text.gz")) }, contains: ["text.gz", "magic number"])
    }

    @Test func truncatedFilesNameTheFileAndSizes() throws {
        let dir = temporaryFolder()
        write(Array(Self.images.dropLast(5)), "short", in: dir)
        expectDataError({ _ = try IDX.read(dir.appendingPathComponent("short")) }, contains: ["short", "truncated", "40 bytes", "35"])
        write(Array(Self.images.prefix(10)), "short-header", in: dir)
        expectDataError({ _ = try IDX.read(dir.appendingPathComponent("short-header")) }, contains: ["short-header", "truncated"])
        // A gzip stream cut in the middle.
        let big = IDX.encode(uint8: (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }, shape: [5000])
        let gz = Gzip.compress(big)
        write(Array(gz.prefix(gz.count / 2)), "cut.gz", in: dir)
        expectDataError({ _ = try IDX.read(dir.appendingPathComponent("cut.gz")) }, contains: ["cut.gz", "gzip", "cut short"])
        // Corrupt deflate data.
        var broken = gz
        for i in 12..<min(40, broken.count) { broken[i] ^= 0xA5 }
        write(broken, "broken.gz", in: dir)
        expectDataError({ _ = try IDX.read(dir.appendingPathComponent("broken.gz")) }, contains: ["broken.gz"])
        // Extra bytes after the data.
        write(Self.labels + [9, 9], "long", in: dir)
        expectDataError({ _ = try IDX.read(dir.appendingPathComponent("long")) }, contains: ["long", "2 bytes after"])
    }

    @Test func missingFileIsNamed() {
        expectDataError({ _ = try IDX.read(URL(fileURLWithPath: "/nonexistent/train-images-idx3-ubyte.gz")) },
                        contains: ["/nonexistent/train-images-idx3-ubyte.gz", "no such file"])
    }

    @Test func splitLoaderChecksCountsAndLabels() throws {
        let dir = temporaryFolder()
        write(Gzip.compress(Self.images), "t10k-images-idx3-ubyte.gz", in: dir)
        write(IDX.encode(uint8: [3, 1, 4], shape: [3]), "t10k-labels-idx1-ubyte", in: dir)
        expectDataError({ _ = try MNIST.load(directory: dir, split: .test, on: .cpu) },
                        contains: ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte", "4 samples", "3"])
        write(IDX.encode(uint8: [3, 1, 4, 12], shape: [4]), "t10k-labels-idx1-ubyte", in: dir)
        expectDataError({ _ = try MNIST.load(directory: dir, split: .test, on: .cpu) }, contains: ["t10k-labels-idx1-ubyte", "12"])
        expectDataError({ _ = try MNIST.load(directory: dir, split: .train, on: .cpu) }, contains: ["train-images-idx3-ubyte.gz", "no such file"])
    }

    @Test(arguments: TestDevices.all) func splitLoaderMakesScaledFlatFeatures(device: Device) throws {
        let dir = temporaryFolder()
        write(Self.images, "train-images-idx3-ubyte", in: dir)
        write(Gzip.compress(Self.labels), "train-labels-idx1-ubyte.gz", in: dir)
        let all = try MNIST.load(directory: dir, split: .train, on: device)
        #expect(all.features.shape == [4, 6])
        expectClose(all.features.toArray(), Self.pixels.map { Double($0) / 255 }, rtol: 1e-6)
        #expect(all.targets.toArray() == [3, 1, 4, 1])
        let (train, validation) = try MNIST.loadTrainValidation(directory: dir, validationCount: 1, seed: 5, flatten: false, on: device)
        #expect(train.features.shape == [3, 2, 3])
        #expect(validation.count == 1)
        // Every sample in exactly one part: the first pixel identifies the image.
        let firsts = (try train.features.reshaped([3, 6]).toArray().enumerated().filter { $0.offset % 6 == 0 }.map(\.element))
            + [validation.features.toArray()[0]]
        #expect(Set(firsts.map { Int(($0 * 255).rounded()) }) == [0, 60, 120, 180])
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: MNIST.fashionDirectory.appendingPathComponent("t10k-labels-idx1-ubyte.gz").path),
                   "Fashion-MNIST is not installed (scripts/setup installs dataset-fashion-mnist)"))
    func realFashionMNISTTestSplit() throws {
        let test = try MNIST.load(split: .test, limit: 300, on: .cpu)
        #expect(test.features.shape == [300, 784])
        let x = test.features.toArray()
        #expect(x.min()! >= 0 && x.max()! <= 1 && x.max()! > 0.9)
        let labels = test.targets.toArray()
        #expect(Set(labels) == Set((0..<10).map(Float.init)))
        #expect(labels.prefix(3) == [9, 2, 1])   // ankle boot, pullover, trouser
    }
}

@Suite struct CSVTests {
    @Test func parsesHeaderRowsQuotesAndBlankLines() throws {
        let t = try CSVTable(parsing: "# comment\n a , \"b\" ,c\r\n1, 2.5, -3e2\n\n4,5,6\n", source: "t.csv")
        #expect(t.header == ["a", "b", "c"])
        #expect(t.rows == [[1, 2.5, -300], [4, 5, 6]])
        #expect(try t.columns(["c", "a"]) == [-300, 1, 6, 4])
        let tensor = try t.tensor(["b"], on: .cpu)
        #expect(tensor.shape == [2, 1])
    }

    @Test func wrongFieldCountNamesTheLine() {
        expectDataError({ _ = try CSVTable(parsing: "x,y\n1,2\n\n3\n", source: "bad.csv") }, contains: ["bad.csv:4", "1 fields, expected 2"])
        expectDataError({ _ = try CSVTable(parsing: "x,y\n1,2,3\n", source: "bad.csv") }, contains: ["bad.csv:2", "3 fields"])
    }

    @Test func nonNumberNamesLineAndColumn() {
        expectDataError({ _ = try CSVTable(parsing: "x,y\n1,2\n3,abc\n", source: "n.csv") }, contains: ["n.csv:3", "field 2 (y)", "abc"])
        expectDataError({ _ = try CSVTable(parsing: "x\nnan\n", source: "n.csv") }, contains: ["n.csv:2", "finite"])
        expectDataError({ _ = try CSVTable(parsing: "\n\n", source: "e.csv") }, contains: ["e.csv", "no header"])
        expectDataError({ _ = try CSVTable(parsing: "x,x\n1,2\n", source: "d.csv") }, contains: ["d.csv:1", "repeats"])
        expectDataError({ _ = try CSVTable(parsing: "x\n1\n", source: "c.csv").columns(["y"]) }, contains: ["c.csv", "'y'"])
    }

    @Test func missingFileIsNamed() {
        expectDataError({ _ = try CSVTable.read(URL(fileURLWithPath: "/nonexistent/x.csv")) }, contains: ["/nonexistent/x.csv", "no such file"])
    }

    @Test func embeddedToyTablesEqualTheDataFiles() throws {
        // Every file in Data/ is a ToyTable, embedded byte for byte (resources in Package.swift).
        let files = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Data").path)
            .filter { $0.hasSuffix(".csv") }.sorted()
        #expect(files == ToyTable.allCases.map(\.fileName).sorted())
        for t in ToyTable.allCases {
            let onDisk = try String(contentsOf: repositoryRoot.appendingPathComponent("Data/\(t.fileName)"), encoding: .utf8)
            #expect(onDisk == t.csvText, "Data/\(t.fileName) differs from the embedded copy")
            #expect(try CSVTable.read(repositoryRoot.appendingPathComponent("Data/\(t.fileName)")).rows == t.table.rows)
        }
        #expect(ToyTable.apartments.table.rowCount == 10)
        #expect(ToyTable.xor.table.rows.map { $0[2] } == [0, 1, 1, 0])
        #expect(ToyTable.and.table.rows.map { $0[2] } == [0, 0, 0, 1])
        #expect(ToyTable.houses.table.header == ["size", "rooms", "distance", "price"])
        #expect(ToyTable.lungCancer.table.rows[1] == [60, 0, 1, 1])
    }
}

@Suite struct DatasetTests {
    /// N samples whose single feature is the sample number, target = 2·number.
    func numbered(_ n: Int, on device: Device) throws -> Dataset {
        try Dataset(features: (0..<n).map(Float.init), shape: [n, 1], targets: (0..<n).map { Float(2 * $0) }, targetShape: [n], on: device)
    }

    @Test func countsMustAgree() {
        expectDataError({ _ = try Dataset(features: [1, 2, 3], shape: [3, 1], targets: [1, 2], targetShape: [2], on: .cpu) },
                        contains: ["3", "2", "same samples"])
    }

    @Test(arguments: TestDevices.all) func splitsAreSeededAndDisjoint(device: Device) throws {
        let data = try numbered(101, on: device)
        let a = try data.split(trainFraction: 0.7, validationFraction: 0.2, seed: 42)
        let b = try data.split(trainFraction: 0.7, validationFraction: 0.2, seed: 42)
        let c = try data.split(trainFraction: 0.7, validationFraction: 0.2, seed: 43)
        #expect(a.train.count == 71 && a.validation.count == 20 && a.test.count == 10)
        #expect(a.train.features.toArray() == b.train.features.toArray())
        #expect(a.train.features.toArray() != c.train.features.toArray())
        let all = a.train.features.toArray() + a.validation.features.toArray() + a.test.features.toArray()
        #expect(all.sorted() == (0..<101).map(Float.init))
        // Targets travel with their features.
        #expect(a.validation.targets.toArray() == a.validation.features.toArray().map { $0 * 2 })
        // Without a seed the order is kept.
        let (train, validation) = try data.split(validationFraction: 0.1)
        #expect(train.features.toArray() == (0..<91).map(Float.init))
        #expect(validation.features.toArray() == (91..<101).map(Float.init))
        expectDataError({ _ = try data.split(fractions: [0.5, 0.6]) }, contains: ["add up to 1"])
    }

    @Test(arguments: TestDevices.all) func batchesCoverEveryoneOncePerEpochAndRepeat(device: Device) throws {
        let data = try numbered(10, on: device)
        func epoch(_ e: Int, seed: UInt64 = 7, dropLast: Bool = false) -> [[Float]] {
            data.batches(size: 4, shuffle: true, seed: seed, epoch: e, dropLast: dropLast).map { $0.features.toArray() }
        }
        let e0 = epoch(0)
        #expect(e0.map(\.count) == [4, 4, 2])
        #expect(e0.flatMap { $0 }.sorted() == (0..<10).map(Float.init))
        #expect(e0 == epoch(0))                    // same (seed, epoch): same batches
        #expect(e0 != epoch(1))                    // next epoch: another order
        #expect(e0 != epoch(0, seed: 8))
        #expect(epoch(0, dropLast: true).map(\.count) == [4, 4])
        #expect(data.batchCount(size: 4) == 3 && data.batchCount(size: 4, dropLast: true) == 2)
        let plain = data.batches(size: 3).map { $0.targets.toArray() }
        #expect(plain == [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]])
    }

    @Test(arguments: TestDevices.all) func anEpochUploadsOnlyItsIndexTensor(device shared: Device) throws {
        // OpenCL: a private device whose counters no other test touches. The CPU device is one shared
        // backend: tests run in parallel and share its counters, which other tests can only raise, so one
        // attempt with exactly one write and no read proves the epoch loop itself does no more.
        let device = shared.isOpenCL ? try DeviceTests.privateOpenCLDevice() : DeviceTests.privateCPUDevice()
        let data = try numbered(1000, on: device)
        var best = (writes: Int.max, reads: Int.max)
        for attempt in 0..<5 {
            let before = device.stats
            var sums: [Tensor] = []
            for batch in data.batches(size: 64, shuffle: true, seed: 1, epoch: attempt) { sums.append(batch.features.sum()) }
            let after = device.stats
            best = (min(best.writes, after.hostWrites - before.hostWrites), min(best.reads, after.hostReads - before.hostReads))
            var total: Float = 0
            for s in sums { total += try s.item() }
            #expect(total == Float((0..<1000).reduce(0, +)))
            if best.writes == 1 && best.reads == 0 { break }
        }
        #expect(best.writes == 1 && best.reads == 0, "one index upload per epoch and no read, got \(best)")
    }

    @Test(arguments: TestDevices.all) func standardizerIsFittedOnTheTrainingPartOnly(device: Device) throws {
        var g = SeededGenerator(seed: 9)
        let n = 50, d = 3
        let x = (0..<n * d).map { i in Float(g.nextDouble() * Double(10 * (i % d + 1)) + Double(i % d) * 100) }
        let constant = (0..<n).map { _ in Float(7) }
        let data = try Dataset(features: x, shape: [n, d], targets: constant, targetShape: [n], on: device)
        let (train, test) = try data.split(validationFraction: 0.2)
        let scaler = try Standardizer(fitting: train.features)
        let trainX = try train.mapFeatures(scaler.transform).features.toArray()
        // Reference statistics in Double from the 40 training rows only.
        for j in 0..<d {
            let col = (0..<40).map { Double(x[$0 * d + j]) }
            let mean = col.reduce(0, +) / 40
            let std = (col.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 40).squareRoot()
            expectClose((0..<40).map { trainX[$0 * d + j] }, col.map { ($0 - mean) / std }, rtol: 1e-4, atol: 1e-4, "train column \(j)")
            let testCol = (40..<50).map { Double(x[$0 * d + j]) }
            let testX = try test.mapFeatures(scaler.transform).features.toArray()
            expectClose((0..<10).map { testX[$0 * d + j] }, testCol.map { ($0 - mean) / std }, rtol: 1e-4, atol: 1e-4, "test column \(j)")
        }
        expectClose(try scaler.inverseTransform(scaler.transform(test.features)).toArray(), test.features.toArray(), rtol: 1e-5, atol: 1e-3)
        // A constant feature gets scale 1 instead of a division by zero.
        let c = try Standardizer(fitting: Tensor(constant, shape: [n, 1], on: device))
        #expect(try c.transform(Tensor([7, 8], shape: [2, 1], on: device)).toArray() == [0, 1])
        expectDataError({ _ = try scaler.transform(Tensor.zeros([2, 4], on: device)) }, contains: ["[2, 4]", "[3]"])
    }

    @Test(arguments: TestDevices.all) func minMaxScalerAndOneHot(device: Device) throws {
        let data = try Dataset(features: [0, 10, 5, 20, 10, 30], shape: [3, 2], targets: [2, 0, 1], targetShape: [3], on: device)
        let parts = try data.split(fractions: [2.0 / 3, 1.0 / 3])
        let (train, test) = (parts[0], parts[1])
        let s = try MinMaxScaler(fitting: train.features)
        #expect(try s.transform(train.features).toArray() == [0, 0, 1, 1])
        #expect(try s.transform(test.features).toArray() == [2, 2])   // beyond the training range
        #expect(try data.oneHotTargets(classes: 3).targets.toArray() == [0, 0, 1, 1, 0, 0, 0, 1, 0])
    }

    @Test func permutationIsFixedBySeed() {
        let p = Dataset.permutation(count: 20, seed: 3)
        #expect(p.sorted() == Array(0..<20))
        #expect(p == Dataset.permutation(count: 20, seed: 3))
        #expect(p != Array(0..<20))
        #expect(Dataset.permutation(count: 0, seed: 1).isEmpty && Dataset.permutation(count: 1, seed: 1) == [0])
    }
}

@Suite struct HistoryAndPlotTests {
    static func sampleHistory(epochs: Int = 12) -> History {
        var h = History()
        for e in 1...epochs {
            let x = Double(e)
            h.append(epoch: e, ["loss": 0.9 * Foundation.exp(-x / 4) + 0.25, "accuracy": 0.92 - 0.2 * Foundation.exp(-x / 3),
                                "val_loss": 0.85 * Foundation.exp(-x / 5) + 0.3 + 0.004 * x, "val_accuracy": 0.9 - 0.2 * Foundation.exp(-x / 3)])
        }
        return h
    }

    @Test func historyKeepsKeysInOrderAndWritesCSVAndJSON() throws {
        var h = History()
        h.append(epoch: 1, ["val_loss": 2, "loss": 1, "accuracy": 0.5])
        h.append(epoch: 2, ["loss": 0.5, "val_loss": 1, "accuracy": 0.75, "val_accuracy": 0.5])
        #expect(h.keys == ["loss", "accuracy", "val_loss", "val_accuracy"])
        #expect(h["loss"] == [1, 0.5])
        #expect(h["val_accuracy"]![0].isNaN && h["val_accuracy"]![1] == 0.5)
        #expect(h.csv() == "epoch,loss,accuracy,val_loss,val_accuracy\n1,1,0.5,2,nan\n2,0.5,0.75,1,0.5\n")
        let json = try JSONSerialization.jsonObject(with: Data(h.json().utf8)) as! [String: Any]
        #expect((json["epoch"] as! [Any]).count == 2)
        #expect((json["val_accuracy"] as! [Any])[0] is NSNull)
        let dir = temporaryFolder()
        try h.write(to: dir.appendingPathComponent("h.json"))
        try h.write(to: dir.appendingPathComponent("h.csv"))
        #expect(try String(contentsOf: dir.appendingPathComponent("h.csv"), encoding: .utf8) == h.csv())
        #expect(try String(contentsOf: dir.appendingPathComponent("h.json"), encoding: .utf8) == h.json())
    }

    @Test func plotIsWellFormedSVGWithBothPanels() throws {
        let svg = LossPlot.svg(Self.sampleHistory(), title: "Fashion-MNIST <MLP>")
        // Parses as XML.
        #expect(XMLParser(data: Data(svg.utf8)).parse(), "the SVG is not well-formed XML")
        #expect(svg.hasPrefix("<svg "))
        #expect(svg.contains("Fashion-MNIST &lt;MLP&gt;"))
        #expect(svg.contains(">Loss<") && svg.contains(">Accuracy<"))
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 4)
        #expect(svg.contains(">validation<") && svg.contains(">training<") && svg.contains(">epoch<"))
        // A loss-only history has one panel; a single epoch and a NaN do not break it.
        var h = History()
        h.append(epoch: 1, ["loss": .nan])
        let one = LossPlot.svg(h)
        #expect(XMLParser(data: Data(one.utf8)).parse())
        #expect(!one.contains(">Accuracy<") && !one.contains("nan"))
        if let dir = ProcessInfo.processInfo.environment["MYELIN_PLOT_DIR"] {
            try LossPlot.write(Self.sampleHistory(), title: "Sample history", to: URL(fileURLWithPath: dir).appendingPathComponent("sample.svg"))
        }
    }

    @Test func ticksAreRound() {
        #expect(LossPlot.ticks(0, 1, count: 6) == [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1])
        #expect(LossPlot.ticks(1, 10, count: 8).first == 0 && LossPlot.ticks(1, 10, count: 8).last == 10)
    }
}
