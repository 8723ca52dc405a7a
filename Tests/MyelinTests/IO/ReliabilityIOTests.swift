import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

// Issue 10, the I/O classes: outputs checked before training (5), stale temporary files of killed saves (7),
// I/O messages in words (9), gzip bombs (11), junk after gzip and safetensors data (12).

/// Runs `body` on a fresh temporary folder and removes it afterwards.
private func inTemporaryFolder(_ name: String = #function, _ body: (URL) throws -> Void) rethrows {
    let dir = temporaryFolder(name)
    defer { try? FileManager.default.removeItem(at: dir) }
    try body(dir)
}

/// Makes a named pipe (FIFO) at `url`.
private func makeFIFO(_ url: URL) {
    #expect(mkfifo(url.path, 0o644) == 0, "mkfifo \(url.path)")
}

/// The text of the error `body` throws ("" when it throws none, which is recorded as a failure).
private func errorText(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    do {
        try body()
        Issue.record("expected an error", sourceLocation: sourceLocation)
        return ""
    } catch {
        return "\(error)"
    }
}

/// A process id that no process has any more (a child that has exited).
private func deadProcessID() throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/true")
    try p.run()
    p.waitUntilExit()
    let pid = p.processIdentifier
    #expect(kill(pid, 0) != 0 && errno == ESRCH, "process \(pid) should be gone")
    return pid
}

/// A byte source that counts what is read from it.
private final class CountingSource: ByteSource {
    let inner: MemoryByteSource
    var consumed = 0
    init(_ bytes: [UInt8]) { inner = MemoryByteSource(bytes) }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try inner.read(into: buffer)
        consumed += n
        return n
    }
}

private let isRoot = geteuid() == 0

// MARK: 5. outputs are checked before training; a failed write at the end keeps the data somewhere safe

@Suite struct OutputPathTests {
    @Test func checkWritableRefusesBadPathsWithoutWritingAnything() throws {
        try inTemporaryFolder { dir in
            // A folder.
            var text = errorText { try AtomicFile.checkWritable(dir) }
            #expect(text.contains(dir.path) && text.contains("is a folder"), "\(text)")
            // A FIFO: refused, and left as it is.
            let fifo = dir.appendingPathComponent("pipe")
            makeFIFO(fifo)
            text = errorText { try AtomicFile.checkWritable(fifo) }
            #expect(text.contains(fifo.path) && text.contains("named pipe"), "\(text)")
            // A regular file in the middle of the path.
            let file = dir.appendingPathComponent("plain")
            try Data("x".utf8).write(to: file)
            let under = file.appendingPathComponent("sub/model.safetensors")
            text = errorText { try AtomicFile.checkWritable(under) }
            #expect(text.contains(under.path) && text.contains("a part of the path is not a folder"), "\(text)")
            // Nothing was written or left behind, and a good path (with folders still to create) passes.
            try AtomicFile.checkWritable(dir.appendingPathComponent("new/deeper/model.safetensors"))
            try AtomicFile.checkWritable(dir.appendingPathComponent("model.safetensors"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["pipe", "plain"])
        }
    }

    @Test(.enabled(if: !isRoot, "root may write anywhere")) func checkWritableRefusesAReadOnlyFolder() throws {
        try inTemporaryFolder { dir in
            let locked = dir.appendingPathComponent("locked")
            try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: true)
            chmod(locked.path, 0o555)
            defer { chmod(locked.path, 0o755) }
            let text = errorText { try AtomicFile.checkWritable(locked.appendingPathComponent("m.safetensors")) }
            #expect(text.contains("locked/m.safetensors") && text.contains("permission denied"), "\(text)")
        }
    }

    @Test func writeErrorsNameTheUserPathInWordsNeverATemporaryFile() throws {
        inTemporaryFolder { dir in
            let text = errorText { try AtomicFile.write(Data("abc".utf8), to: dir) }
            #expect(text.contains(dir.path) && text.contains("is a folder"), "\(text)")
            #expect(!text.contains(".tmp") && !text.contains("NSCocoaErrorDomain") && !text.contains("Error Domain"), "\(text)")
            let fifo = dir.appendingPathComponent("pipe")
            makeFIFO(fifo)
            let model = Dense(inputSize: 2, outputSize: 1, seed: 1, device: .cpu)
            let saveText = errorText { try model.save(to: fifo) }
            #expect(saveText.contains(fifo.path) && saveText.contains("not a regular file"), "\(saveText)")
            // Foundation's errors are mapped to the same words.
            #expect("\(FileError(path: "/x/m", action: .write, error: CocoaError(.fileWriteOutOfSpace)))" == "/x/m: cannot write the file (no space left on the disk (disk full))")
            #expect("\(FileError(path: "/x/m", action: .write, error: NSError(domain: NSPOSIXErrorDomain, code: Int(EACCES))))" == "/x/m: cannot write the file (permission denied)")
            #expect(FileError.words(errno: EROFS) == "the file system is read-only")
        }
    }

    @Test func aFailedWriteIsRescuedToAnotherFolderAndSaysWhere() throws {
        try inTemporaryFolder { dir in
            let blocker = dir.appendingPathComponent("not-a-folder")
            try Data("x".utf8).write(to: blocker)
            let rescue = dir.appendingPathComponent("rescue")
            try FileManager.default.createDirectory(at: rescue, withIntermediateDirectories: true)
            let intended = blocker.appendingPathComponent("model.safetensors")
            let model = Dense(inputSize: 3, outputSize: 2, seed: 4, device: .cpu)
            let outcome = try AtomicFile.rescuing(intended, rescueFolders: [blocker, rescue]) {
                try model.save(to: $0)
            }
            guard case .rescued(let place, let cause) = outcome else { Issue.record("expected a rescue, got \(outcome)"); return }
            #expect(place.deletingLastPathComponent().path == rescue.path)
            #expect(place.lastPathComponent.hasPrefix("rescued-") && place.lastPathComponent.hasSuffix("-model.safetensors"))
            #expect(cause.path == intended.path && "\(cause)".contains("is not a folder"), "\(cause)")
            let back = Dense(inputSize: 3, outputSize: 2, seed: 99, device: .cpu)
            try back.load(from: place)
            #expect(back.weight.toArray() == model.weight.toArray())
            // The data version, and a write that works needs no rescue.
            #expect(try AtomicFile.write(Data("ok".utf8), to: dir.appendingPathComponent("fine.txt"), rescueFolders: [rescue]) == .written)
            // An error that is not about the file is not "rescued" (it would fail the same anywhere).
            struct Bad: Error {}
            #expect(throws: Bad.self) { _ = try AtomicFile.rescuing(dir.appendingPathComponent("x"), rescueFolders: [rescue]) { _ in throw Bad() } }
        }
    }

    @Test func modelCheckpointChecksItsPathBeforeTheFirstEpoch() throws {
        try inTemporaryFolder { dir in
            let model = Dense(inputSize: 2, outputSize: 1, seed: 3, device: .cpu)
            let before = model.weight.toArray()
            let data = try Dataset(features: [0, 0, 0, 1, 1, 0, 1, 1], shape: [4, 2], targets: [0, 1, 1, 0], targetShape: [4, 1], on: .cpu)
            let optimizer = try SGD(parameters: model.parameters, learningRate: 0.5)
            final class EpochCounter: Callback {
                var epochs = 0
                func epochDidEnd(_ epoch: Int, logs: [String: Double], _ context: TrainingContext) throws { epochs += 1 }
            }
            let counter = EpochCounter()
            let text = errorText {
                _ = try model.fit(data, epochs: 3, batchSize: 4, loss: .meanSquaredError, optimizer: optimizer,
                                  callbacks: [counter, ModelCheckpoint(url: dir)], verbosity: .silent)
            }
            #expect(text.contains(dir.path) && text.contains("is a folder"), "\(text)")
            #expect(counter.epochs == 0)
            #expect(model.weight.toArray() == before, "no training step before the check")
        }
    }
}

// MARK: 7. killed saves leave temporary files; the next save to the same path removes them

@Suite struct StaleTemporaryFileTests {
    @Test func theNextSaveRemovesTemporaryFilesOfDeadProcessesOnly() throws {
        try inTemporaryFolder { dir in
            let dead = try deadProcessID()
            let big = Data(repeating: 7, count: 1 << 20)
            let stale = [".m.safetensors.\(dead).123.tmp", ".m.safetensors.\(dead).4294967295.tmp"]
            let kept = [".m.safetensors.1.789.tmp",                 // pid 1 is alive: a write in progress
                        ".m.safetensors.\(getpid()).5.tmp",         // this process
                        ".other.safetensors.\(dead).1.tmp",         // another target
                        ".m.safetensors.\(dead).tmp",               // not our pattern
                        ".m.safetensors.\(dead).12x.tmp",
                        "m.safetensors.\(dead).1.tmp",
                        ".m.safetensors.\(dead).1.tmp.keep"]
            for name in stale + kept { try big.write(to: dir.appendingPathComponent(name)) }
            let model = Dense(inputSize: 2, outputSize: 2, seed: 1, device: .cpu)
            try model.save(to: dir.appendingPathComponent("m.safetensors"))
            let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
            #expect(left == Set(kept + ["m.safetensors"]))
        }
    }

    @Test func temporaryNamesCarryTheProcessID() throws {
        let url = URL(fileURLWithPath: "/some/folder/model.v2.safetensors")
        let name = URL(fileURLWithPath: AtomicFile.temporaryPath(for: url)).lastPathComponent
        #expect(AtomicFile.temporaryFileProcess(name, target: "model.v2.safetensors") == getpid())
        #expect(AtomicFile.temporaryFileProcess(name, target: "model.safetensors") == nil)
        #expect(AtomicFile.temporaryFileProcess(".model.v2.safetensors.-3.1.tmp", target: "model.v2.safetensors") == nil)
        #expect(!AtomicFile.processIsAlive(try deadProcessID()))
        #expect(AtomicFile.processIsAlive(1) && AtomicFile.processIsAlive(getpid()))
    }

    @Test func aFailedWriteLeavesNoTemporaryFile() throws {
        try inTemporaryFolder { dir in
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("target"), withIntermediateDirectories: true)
            _ = errorText { try AtomicFile.write(Data(count: 1000), to: dir.appendingPathComponent("target")) }
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["target"])
        }
    }
}

// MARK: 9. I/O messages say what is wrong; data is validated before training

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

// MARK: 11. gzip bombs: the header first, never more than it announces

@Suite struct GzipBombTests {
    /// An IDX header announcing `count` bytes, then `megabytes` MiB of zeros, as concatenated gzip members
    /// (about 1 KB of gzip per MiB).
    static func bomb(count: Int, megabytes: Int) -> [UInt8] {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let member = Gzip.compress(zeros, level: 9)
        var out = Gzip.compress(IDX.encode(uint8: [UInt8](repeating: 0, count: count), shape: [count]))
        for _ in 0..<megabytes { out += member }
        return out
    }

    @Test func aStreamHoldingMoreThanTheHeaderAnnouncesIsRefusedAtTheFirstExtraByte() throws {
        let bytes = Self.bomb(count: 10, megabytes: 1024)   // 1 GiB of zeros in about 1 MB
        let source = CountingSource(bytes)
        let text = errorText { _ = try IDX.decode(from: source, size: bytes.count, source: "bomb.gz") }
        #expect(text.contains("bomb.gz") && text.contains("decompresses to more than the 18 bytes the header announces"), "\(text)")
        #expect(source.consumed <= (1 << 18) + 2, "read \(source.consumed) of \(bytes.count) compressed bytes")
        // Through the file reader too, quickly.
        try inTemporaryFolder { dir in
            let file = dir.appendingPathComponent("bomb-idx1-ubyte.gz")
            try Data(bytes).write(to: file)
            let start = Date()
            let fileText = errorText { _ = try IDX.read(file) }
            #expect(fileText.contains(file.path) && fileText.contains("decompresses to more than"), "\(fileText)")
            #expect(Date().timeIntervalSince(start) < 5)
        }
    }

    @Test func aHeaderAnnouncingMoreThanTheGzipDataCanHoldIsRefusedBeforeInflating() {
        // 1e9 bytes announced by a 40-byte gzip file: deflate never shrinks more than 1032 times.
        var header = IDX.encode(uint8: [], shape: [0])
        header[4...7] = [0x3B, 0x9A, 0xCA, 0x00]
        let gz = Gzip.compress(header)
        let text = errorText { _ = try IDX.decode(gz, source: "liar.gz") }
        #expect(text.contains("liar.gz") && text.contains("more than \(gz.count) bytes of gzip data can hold"), "\(text)")
    }

    @Test func theHeaderIsReadWithoutInflatingTheData() throws {
        let bytes = Self.bomb(count: 10, megabytes: 256)
        let source = CountingSource(bytes)
        let (stream, gzip) = try IDX.open(source, source: "h.gz")
        let h = try IDX.readHeader(stream, size: bytes.count, gzip: gzip, source: "h.gz")
        #expect(h.shape == [10] && h.type == .uint8 && gzip)
        #expect(source.consumed <= (1 << 18) + 2)
    }

    @Test func gzipDecompressTakesALimit() {
        let gz = Gzip.compress([UInt8](repeating: 1, count: 5000))
        #expect((try? Gzip.decompress(gz, source: "x", limit: 5000))?.count == 5000)
        let text = errorText { _ = try Gzip.decompress(gz, source: "x.gz", limit: 4999) }
        #expect(text.contains("x.gz") && text.contains("more than 4999 bytes"), "\(text)")
    }
}

// MARK: 12. leniency: junk after gzip data, bytes after a safetensors file's data

@Suite struct TrailingDataTests {
    static let idx = IDX.encode(uint8: (0..<24).map { UInt8($0 * 10) }, shape: [4, 2, 3])

    @Test func junkAfterTheGzipStreamIsRefused() {
        for junk: [UInt8] in [Array("junk".utf8), [0x1f], [0, 0, 7], [0x1f, 0x8c, 1, 2]] {
            let text = errorText { _ = try IDX.decode(Gzip.compress(Self.idx) + junk, source: "j.gz") }
            #expect(text.contains("j.gz") && text.contains("junk after the stream")
                    && text.contains("\(junk.count) bytes after the end of the gzip data"), "\(junk): \(text)")
        }
        // A second member that starts like gzip but is not valid gzip.
        let text = errorText { _ = try IDX.decode(Gzip.compress(Self.idx) + [0x1f, 0x8b, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9], source: "k.gz") }
        #expect(text.contains("k.gz") && text.contains("gzip"), "\(text)")
    }

    @Test func concatenatedMembersAndZeroPaddingAreGzipAsGzipAndPythonReadThem() throws {
        let whole = try IDX.decode(Self.idx, source: "raw")
        let split = Gzip.compress(Array(Self.idx[..<7])) + Gzip.compress(Array(Self.idx[7...]))
        #expect(try IDX.decode(split, source: "two members").payload == whole.payload)
        #expect(try IDX.decode(Gzip.compress(Self.idx) + [0, 0, 0, 0, 0], source: "padded").payload == whole.payload)
        #expect(try Gzip.decompress(split + [0, 0], source: "s") == Self.idx)
    }

    static func file(_ header: String, data: [UInt8]) -> Data {
        var h = Array(header.utf8)
        h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8)
        var n = UInt64(h.count).littleEndian
        return withUnsafeBytes(of: &n) { Data($0) } + Data(h) + Data(data)
    }

    @Test func safetensorsDataMustEndWhereTheLastTensorEnds() throws {
        let good = try SafeTensors.encode(entries: [SafeTensorsEntry(name: "w", shape: [2], values: [1, 2]),
                                                    SafeTensorsEntry(name: "b", shape: [1], values: [3])])
        #expect(try SafeTensors.decode(good, source: "good").names.count == 2)
        var text = errorText { _ = try SafeTensors.decode(good + Data([1, 2, 3]), source: "tail.safetensors") }
        #expect(text.contains("tail.safetensors") && text.contains("3 bytes after the end of the last tensor"), "\(text)")
        // Through a file.
        try inTemporaryFolder { dir in
            let url = dir.appendingPathComponent("m.safetensors")
            try (good + Data(count: 8)).write(to: url)
            let fileText = errorText { _ = try SafeTensors.load(url) }
            #expect(fileText.contains(url.path) && fileText.contains("8 bytes after"), "\(fileText)")
        }
        // No tensors, yet data.
        text = errorText { _ = try SafeTensors.decode(Self.file("{}", data: [0, 0, 0, 0]), source: "empty") }
        #expect(text.contains("4 bytes after"), "\(text)")
        #expect(try SafeTensors.decode(Self.file("{}", data: []), source: "empty").entries.isEmpty)
        // A gap between tensors, and data before the first.
        let f = [UInt8](repeating: 0, count: 12)
        text = errorText { _ = try SafeTensors.decode(Self.file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, data: f), source: "gap") }
        #expect(text.contains("4 bytes between tensors 'a'") && text.contains("'b'"), "\(text)")
        text = errorText { _ = try SafeTensors.decode(Self.file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: f), source: "late") }
        #expect(text.contains("4 bytes before the first tensor 'a'"), "\(text)")
        // Zero-size tensors share an offset, as Python writes them.
        let zeros = Self.file(#"{"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"f":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 128, 63])
        #expect(try SafeTensors.decode(zeros, source: "zeros")["a"]?.values == [1])
    }
}
