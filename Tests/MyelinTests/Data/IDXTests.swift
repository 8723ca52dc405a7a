import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// IDX files, raw and gzipped: big-endian types, errors naming the file and the sizes, and the split loader
/// (counts, labels, scaled flat features); the real Fashion-MNIST test split when it is on disk.
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
        expectClose(try all.features.toArray(), Self.pixels.map { Double($0) / 255 }, rtol: 1e-6)
        #expect(try all.targets.toArray() == [3, 1, 4, 1])
        let (train, validation) = try MNIST.loadTrainValidation(directory: dir, validationCount: 1, seed: 5, flatten: false, on: device)
        #expect(train.features.shape == [3, 2, 3])
        #expect(validation.count == 1)
        // Every sample in exactly one part: the first pixel identifies the image.
        let firsts = (try train.features.reshaped([3, 6]).toArray().enumerated().filter { $0.offset % 6 == 0 }.map(\.element))
            + [try validation.features.toArray()[0]]
        #expect(Set(firsts.map { Int(($0 * 255).rounded()) }) == [0, 60, 120, 180])
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: MNIST.fashionDirectory.appendingPathComponent("t10k-labels-idx1-ubyte.gz").path),
                   "Fashion-MNIST is not installed (scripts/setup installs dataset-fashion-mnist)"))
    func realFashionMNISTTestSplit() throws {
        let test = try MNIST.load(split: .test, limit: 300, on: .cpu)
        #expect(test.features.shape == [300, 784])
        let x = try test.features.toArray()
        #expect(x.min()! >= 0 && x.max()! <= 1 && x.max()! > 0.9)
        let labels = try test.targets.toArray()
        #expect(Set(labels) == Set((0..<10).map(Float.init)))
        #expect(labels.prefix(3) == [9, 2, 1])   // ankle boot, pullover, trouser
    }
}
