import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// I/O errors say what is wrong in words (a folder, a FIFO, no permission, a missing file), and Fashion-MNIST's
/// files are validated (headers, counts, image size) before anything is loaded.
@Suite struct IOMessageTests {
    /// Every reader of files, each with the text its error gives for `url`.
    static func readerErrors(_ url: URL) -> [String: String] {
        [
            "IDX": errorText { _ = try IDX.read(url) },
            "IDX header": errorText { _ = try IDX.header(of: url) },
            "CSV": errorText { _ = try CSVTable.read(url) },
            "safetensors": errorText { _ = try SafeTensors.load(url) },
            "Layer.load": errorText { try Dense(inputSize: 2, outputSize: 1, seed: 1, device: .cpu).load(from: url) },
            "ReadableFile": errorText { _ = try ReadableFile(url) },
        ]
    }

    @Test func aFolderAFIFOAndAMissingFileEachSayWhatTheyAre() throws {
        try inTemporaryFolder { dir in
            let fifo = dir.appendingPathComponent("pipe.gz")
            makeFIFO(fifo)
            let plain = dir.appendingPathComponent("plain")
            try Data("x".utf8).write(to: plain)
            let cases: [(URL, String)] = [
                (dir, "it is a folder"),
                (fifo, "not a regular file (a named pipe, FIFO)"),   // never opened: a FIFO without a writer cannot block
                (dir.appendingPathComponent("nothing-here"), "no such file or directory"),
                (plain.appendingPathComponent("x"), "a part of the path is not a folder"),
            ]
            for (url, words) in cases {
                for (reader, text) in Self.readerErrors(url) {
                    #expect(text.contains(url.path) && text.contains(words), "\(reader): \(text)")
                    #expect(!text.contains("permission") && !text.contains("NSCocoaErrorDomain") && !text.contains("error 256"),
                            "\(reader): \(text)")
                }
            }
        }
    }

    @Test(.enabled(if: !isRoot, "root reads everything")) func anUnreadableFolderSaysPermissionDenied() throws {
        try inTemporaryFolder { dir in
            let locked = dir.appendingPathComponent("locked")
            try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: true)
            let inside = locked.appendingPathComponent("train-images-idx3-ubyte")
            try Data(IDX.encode(uint8: [1, 2], shape: [2])).write(to: inside)
            chmod(locked.path, 0o000)
            defer { chmod(locked.path, 0o755) }
            for (reader, text) in Self.readerErrors(inside) {
                #expect(text.contains("permission denied") && !text.contains("no such file"), "\(reader): \(text)")
            }
        }
    }

    @Test func errnoValuesReadAsWords() {
        #expect(FileError.words(errno: EACCES) == "permission denied")
        #expect(FileError.words(errno: ENOENT) == "no such file or directory")
        #expect(FileError.words(errno: EISDIR) == "it is a folder, not a file")
        #expect(FileError.words(errno: EIO).contains("input/output error"))
        #expect(FileError.words(errno: ENOSPC).contains("disk full"))
        #expect("\(FileError(path: "/d/f", action: .read, errno: EACCES))" == "/d/f: cannot read the file (permission denied)")
        #expect("\(DataError.missingFile("/d/f", reason: FileError.words(errno: EACCES)))".contains("permission denied"))
    }

    /// A folder with both splits: 4 images of `trainSize` and `testSize`, labels 3, 1, 4, 1.
    static func writeSplits(_ dir: URL, trainSize: [Int], testSize: [Int], testLabels: Int = 4) throws {
        func images(_ size: [Int]) -> [UInt8] { IDX.encode(uint8: [UInt8](repeating: 9, count: 4 * size[0] * size[1]), shape: [4] + size) }
        try Data(Gzip.compress(images(trainSize))).write(to: dir.appendingPathComponent("train-images-idx3-ubyte.gz"))
        try Data(IDX.encode(uint8: [3, 1, 4, 1], shape: [4])).write(to: dir.appendingPathComponent("train-labels-idx1-ubyte"))
        try Data(Gzip.compress(images(testSize))).write(to: dir.appendingPathComponent("t10k-images-idx3-ubyte.gz"))
        try Data(IDX.encode(uint8: [UInt8](repeating: 2, count: testLabels), shape: [testLabels]))
            .write(to: dir.appendingPathComponent("t10k-labels-idx1-ubyte"))
    }

    @Test func theTestSplitIsValidatedWithTheTrainingSplitBeforeAnythingIsLoaded() throws {
        try inTemporaryFolder { dir in
            try Self.writeSplits(dir, trainSize: [2, 3], testSize: [2, 3])
            try MNIST.validateFiles(directory: dir)
            try MNIST.validateFiles(directory: dir, imageSize: (rows: 2, columns: 3))
            // Images of the wrong size for the model: the error names the file and both sizes.
            var text = errorText { try MNIST.validateFiles(directory: dir, imageSize: (rows: 28, columns: 28)) }
            #expect(text.contains("train-images-idx3-ubyte.gz") && text.contains("2×3") && text.contains("28×28"), "\(text)")
            // A test split of another size than the training split.
            try Self.writeSplits(dir, trainSize: [2, 3], testSize: [3, 3])
            text = errorText { try MNIST.validateFiles(directory: dir) }
            #expect(text.contains("t10k-images-idx3-ubyte.gz") && text.contains("3×3") && text.contains("2×3"), "\(text)")
            // Test labels that do not match the test images.
            try Self.writeSplits(dir, trainSize: [2, 3], testSize: [2, 3], testLabels: 3)
            text = errorText { try MNIST.validateFiles(directory: dir) }
            #expect(text.contains("t10k-labels-idx1-ubyte") && text.contains("4 samples"), "\(text)")
            // A missing test file, and a missing data folder.
            try FileManager.default.removeItem(at: dir.appendingPathComponent("t10k-labels-idx1-ubyte"))
            text = errorText { try MNIST.validateFiles(directory: dir) }
            #expect(text.contains("t10k-labels-idx1-ubyte") && text.contains("no such file"), "\(text)")
            let missing = dir.appendingPathComponent("no-data")
            text = errorText { try MNIST.validateFiles(directory: missing) }
            #expect(text.contains(missing.path) && text.contains("no such file or directory"), "\(text)")
        }
    }

    @Test func validationReadsOnlyTheHeaders() throws {
        try inTemporaryFolder { dir in
            try Self.writeSplits(dir, trainSize: [2, 3], testSize: [2, 3])
            // Test images whose data is corrupt after an intact header: the header check passes (the full
            // read, before training, still refuses them).
            var gz = Gzip.compress(IDX.encode(uint8: (0..<2400).map { UInt8(truncatingIfNeeded: $0 &* 31) }, shape: [100, 4, 6]))
            for i in (gz.count - 30)..<(gz.count - 8) { gz[i] ^= 0x5A }
            let file = dir.appendingPathComponent("t10k-images-idx3-ubyte.gz")
            try Data(gz).write(to: file)
            #expect(try IDX.header(of: file).shape == [100, 4, 6])
            _ = errorText { _ = try IDX.read(file) }
        }
    }
}
