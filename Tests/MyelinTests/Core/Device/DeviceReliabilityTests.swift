import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A fresh empty folder under the temporary directory (removed by the caller).
private func reliabilityTestFolder(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("myelin-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Issue 10, class 2: kernel-cache entries are verified before they reach the driver; a bad one is rebuilt and
/// replaced; an unwritable cache folder means running without a cache, said once.
@Suite struct KernelCacheReliabilityTests {
    static let tinySource = "__kernel void twice(__global float* x) { x[get_global_id(0)] *= 2.0f; }\n"

    @Test func entriesRoundTripAndEveryKindOfDamageIsCaught() {
        let binary = (0..<1001).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let entry = ProgramCache.encode(binary)
        #expect(entry.count == ProgramCache.headerSize + binary.count)
        #expect(ProgramCache.decode(entry) == .success(Data(binary)))

        var truncated = entry
        truncated.removeLast(7)
        #expect(ProgramCache.decode(truncated) == .failure(.wrongLength(declared: 1001, actual: 994)))
        var padded = entry
        padded.append(0)
        #expect(ProgramCache.decode(padded) == .failure(.wrongLength(declared: 1001, actual: 1002)))
        // Every single flipped bit of the payload changes the checksum.
        for position in stride(from: ProgramCache.headerSize, to: entry.count, by: 13) {
            for bit in [0, 3, 7] {
                var flipped = entry
                flipped[position] ^= UInt8(1 << bit)
                #expect(ProgramCache.decode(flipped) == .failure(.wrongChecksum), "byte \(position) bit \(bit)")
            }
        }
        var badMagic = entry
        badMagic[0] ^= 0xff
        #expect(ProgramCache.decode(badMagic) == .failure(.wrongMagic))
        var badVersion = entry
        badVersion[8] = 9
        #expect(ProgramCache.decode(badVersion) == .failure(.wrongVersion(9)))
        #expect(ProgramCache.decode(Data("not a program".utf8)) == .failure(.tooShort(bytes: 13)))
        #expect(ProgramCache.decode(Data(repeating: 0xAB, count: 4096)) == .failure(.wrongMagic))
        // A header for an empty program is not an entry either.
        #expect(ProgramCache.decode(ProgramCache.encode([])) == .failure(.wrongLength(declared: 0, actual: 0)))
        // Descriptions say what is wrong.
        #expect(ProgramCache.EntryProblem.wrongChecksum.description.contains("checksum"))
        #expect(ProgramCache.EntryProblem.wrongLength(declared: 10, actual: 3).description.contains("truncated"))
    }

    /// Writes `damage` of a good entry into the cache, then builds again: the program works (built from source) and
    /// the entry is replaced by a good one.
    @Test(arguments: ["truncated", "flipped", "garbage", "header only"])
    func aDamagedEntryIsRebuiltAndReplaced(damage: String) throws {
        guard TestDevices.openCLAvailable else { return }
        let backend = try #require(TestDevices.openCL.backend as? OpenCLBackend)
        let folder = try reliabilityTestFolder("cache")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = "// \(damage) \(UUID().uuidString)\n" + Self.tinySource
        let first = try ProgramCache.build(context: backend.context, info: backend.info, source: source, directory: folder)
        clReleaseProgramForTest(first.program)
        #expect(first.fromCache == false)
        let file = ProgramCache.file(source: source, info: backend.info, directory: folder)
        let good = try Data(contentsOf: file)
        #expect((try? ProgramCache.decode(good).get()) != nil)

        var bad = good
        switch damage {
        case "truncated": bad = good.prefix(good.count / 2)
        case "flipped": for i in stride(from: ProgramCache.headerSize + 5, to: good.count, by: 97) { bad[i] ^= 0x5A }
        case "garbage": bad = Data((0..<good.count).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) })
        default: bad = good.prefix(ProgramCache.headerSize)
        }
        try bad.write(to: file)

        let rebuilt = try ProgramCache.build(context: backend.context, info: backend.info, source: source, directory: folder)
        clReleaseProgramForTest(rebuilt.program)
        #expect(rebuilt.fromCache == false, "a \(damage) entry was handed to the driver")
        let replaced = try Data(contentsOf: file)
        #expect(replaced != bad)
        #expect((try? ProgramCache.decode(replaced).get()) != nil, "the \(damage) entry was not replaced by a good one")
        let again = try ProgramCache.build(context: backend.context, info: backend.info, source: source, directory: folder)
        clReleaseProgramForTest(again.program)
        #expect(again.fromCache == true)
    }

    /// A fresh OpenCL device whose cached program has flipped bytes: it is created, runs ops correctly, and the
    /// entry is replaced.
    @Test func aFreshDeviceWithACorruptCachedProgramWorks() throws {
        guard TestDevices.openCLAvailable else { return }
        let shared = try #require(TestDevices.openCL.backend as? OpenCLBackend)
        let folder = try reliabilityTestFolder("device-cache")
        defer { try? FileManager.default.removeItem(at: folder) }
        // The shared device's entry of gemm.cl (built by this process) copied into the new cache folder, then damaged.
        _ = try Tensor.ones([2, 3], on: TestDevices.openCL).matmul(Tensor.ones([3, 2], on: TestDevices.openCL)).toArray()
        let source = shared.programSource(try #require(shared.programFiles.first { $0.name == "gemm.cl" }))
        let original = ProgramCache.file(source: source, info: shared.info, directory: shared.cacheDirectory)
        let good = try Data(contentsOf: original)
        #expect(throws: Never.self) { try ProgramCache.decode(good).get() }
        var bad = good
        for i in stride(from: ProgramCache.headerSize + 3, to: good.count, by: 4099) { bad[i] ^= 0xFF }
        let file = ProgramCache.file(source: source, info: shared.info, directory: folder)
        try bad.write(to: file)

        var environment = ProcessInfo.processInfo.environment
        environment["MYELIN_CACHE_DIR"] = folder.path
        environment["MYELIN_KERNELS_DIR"] = nil
        let device = Device(backend: try OpenCLBackend(index: 0, info: shared.info, environment: environment))
        let a = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3], on: device)
        let b = try Tensor([1, 0, 0, 1, 1, 1], shape: [3, 2], on: device)
        #expect(try (a.matmul(b) + 1).toArray() == [5, 6, 11, 12])
        // Replaced by a good entry (a driver's binary need not be byte-identical from one build to the next).
        let replaced = try Data(contentsOf: file)
        #expect(replaced != bad)
        #expect((try? ProgramCache.decode(replaced).get()) != nil, "the damaged entry was not replaced by a good one")
        let reloaded = try ProgramCache.build(context: shared.context, info: shared.info, source: source, directory: folder)
        OpenCLBackend.releaseProgram(reloaded.program)
        #expect(reloaded.fromCache, "the replaced entry was not used")
    }

    @Test func anUnwritableCacheFolderMeansNoCacheSaidOnce() throws {
        guard TestDevices.openCLAvailable else { return }
        let backend = try #require(TestDevices.openCL.backend as? OpenCLBackend)
        let parent = try reliabilityTestFolder("unwritable")
        defer { try? FileManager.default.removeItem(at: parent) }
        // A folder below a regular file can be neither created nor written, whoever runs the test (root too).
        let blocker = parent.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: blocker)
        let folder = blocker.appendingPathComponent("cache")
        let source = "// unwritable \(UUID().uuidString)\n" + Self.tinySource
        #expect(!ProgramCache.hasReportedUnwritable(folder))
        for _ in 0..<2 {
            let built = try ProgramCache.build(context: backend.context, info: backend.info, source: source, directory: folder)
            clReleaseProgramForTest(built.program)
            #expect(built.fromCache == false)
        }
        #expect(ProgramCache.hasReportedUnwritable(folder))
        // Said once: a later failure in the same folder says nothing more.
        #expect(ProgramCache.reportUnwritable(folder, reason: CocoaError(.fileWriteNoPermission)) == false)
    }
}

/// Releases a program a test built through `ProgramCache.build`.
private func clReleaseProgramForTest(_ program: OpaquePointer) {
    OpenCLBackend.releaseProgram(program)
}

/// Issue 10, class 4: `MYELIN_KERNELS_DIR` is checked when the device is created.
@Suite struct KernelsDirectoryTests {
    private func expectKernelsError(_ body: () throws -> Void, contains parts: [String],
                                    sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("no error", sourceLocation: sourceLocation)
        } catch let error as DeviceError {
            guard case .kernelsDirectory = error else {
                Issue.record("expected kernelsDirectory, got \(error)", sourceLocation: sourceLocation)
                return
            }
            for p in parts {
                #expect(error.description.contains(p), "'\(error.description)' does not mention '\(p)'", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    /// A folder with every embedded kernel file, less `leaving`.
    private func kernelFolder(leaving: Set<String> = []) throws -> URL {
        let folder = try reliabilityTestFolder("kernels")
        for (name, text) in KernelLibrary.embedded where !leaving.contains(name) {
            try Data(text.utf8).write(to: folder.appendingPathComponent(name))
        }
        return folder
    }

    @Test func aFolderThatDoesNotExistIsAnError() {
        let path = "/nonexistent-\(UUID().uuidString)/kernels"
        expectKernelsError({ _ = try KernelLibrary.source(environment: ["MYELIN_KERNELS_DIR": path]) },
                           contains: [path, "does not exist", "MYELIN_KERNELS_DIR"])
    }

    @Test func aFolderMissingAKernelFileNamesIt() throws {
        let folder = try kernelFolder(leaving: ["gemm.cl", "reduce.cl"])
        defer { try? FileManager.default.removeItem(at: folder) }
        expectKernelsError({ _ = try KernelLibrary.source(environment: ["MYELIN_KERNELS_DIR": folder.path]) },
                           contains: [folder.path, "missing gemm.cl, reduce.cl"])
    }

    @Test func unreadableKernelFilesAreNamed() throws {
        let folder = try kernelFolder(leaving: ["conv.cl", "layout.cl"])
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data([0x2F, 0x2F, 0xFF, 0xFE, 0x0A]).write(to: folder.appendingPathComponent("conv.cl"))
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("layout.cl"), withIntermediateDirectories: false)
        expectKernelsError({ _ = try KernelLibrary.source(environment: ["MYELIN_KERNELS_DIR": folder.path]) },
                           contains: [folder.path, "conv.cl (not UTF-8 text)", "layout.cl (cannot be read)"])
    }

    @Test func aFileInsteadOfAFolderIsAnError() throws {
        let folder = try reliabilityTestFolder("kernels-file")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("gemm.cl")
        try Data("x".utf8).write(to: file)
        expectKernelsError({ _ = try KernelLibrary.source(environment: ["MYELIN_KERNELS_DIR": file.path]) },
                           contains: [file.path, "not a folder"])
    }

    @Test func aCompleteFolderGivesItsSources() throws {
        let folder = try kernelFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("// an extra kernel file\n".utf8).write(to: folder.appendingPathComponent("zz_extra.cl"))
        let source = try KernelLibrary.source(environment: ["MYELIN_KERNELS_DIR": folder.path])
        #expect(source == KernelLibrary.join(KernelLibrary.embedded + [("zz_extra.cl", "// an extra kernel file\n")]))
        #expect(try KernelLibrary.source(environment: [:]) == KernelLibrary.join(KernelLibrary.embedded))
    }

    /// A folder whose files are all there but one of which lost its kernels: an error at device creation naming
    /// the missing kernels, not a trap at their first use.
    @Test func aFolderLackingAKernelFunctionIsAnErrorAtDeviceCreation() throws {
        guard let info = OpenCLPlatforms.devices().first else { return }
        let folder = try kernelFolder(leaving: ["reduce.cl"])
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("// every kernel of this file was removed\n".utf8).write(to: folder.appendingPathComponent("reduce.cl"))
        // The usual cache (the built-in program is usually there already); the broken program's entry is removed.
        let cache = ProgramCache.directory
        let brokenSource = try KernelLibrary.source(environment: ["MYELIN_KERNELS_DIR": folder.path])
        defer { try? FileManager.default.removeItem(at: ProgramCache.file(source: brokenSource, info: info, directory: cache)) }
        expectKernelsError({
            _ = try OpenCLBackend(index: 0, info: info, environment: ["MYELIN_KERNELS_DIR": folder.path, "MYELIN_CACHE_DIR": cache.path])
        }, contains: [folder.path, "its kernels lack", "argmax_rows", "reduce_rows", "reduce_strided"])
        // The complete folder makes a working device.
        try Data(KernelLibrary.embedded.first { $0.0 == "reduce.cl" }!.1.utf8).write(to: folder.appendingPathComponent("reduce.cl"))
        let device = Device(backend: try OpenCLBackend(index: 0, info: info,
                                                       environment: ["MYELIN_KERNELS_DIR": folder.path, "MYELIN_CACHE_DIR": cache.path]))
        #expect(try Tensor([1, 5, 2], shape: [1, 3], on: device).argmax().toArray() == [1])
    }

    /// The error comes when the device is created, before any kernel is built or used.
    @Test func deviceCreationFailsOnABrokenKernelsFolder() throws {
        guard let info = OpenCLPlatforms.devices().first else { return }
        let folder = try kernelFolder(leaving: ["optimizers.cl"])
        defer { try? FileManager.default.removeItem(at: folder) }
        expectKernelsError({ _ = try OpenCLBackend(index: 0, info: info, environment: ["MYELIN_KERNELS_DIR": folder.path]) },
                           contains: [folder.path, "optimizers.cl"])
        expectKernelsError({ _ = try OpenCLBackend(index: 0, info: info, environment: ["MYELIN_KERNELS_DIR": folder.path + "-gone"]) },
                           contains: [folder.path + "-gone", "does not exist"])
    }
}

/// Issue 10, class 3: sizes are checked against the device's memory before anything is allocated, with errors
/// naming the layer and the bytes; overflowing shapes are errors.
@Suite struct AllocationCheckTests {
    @Test func shapeProductsThatOverflowAreCaught() throws {
        #expect(checkedElementCount([Int.max, 2]) == nil)
        #expect(checkedElementCount([1 << 32, 1 << 32]) == nil)
        #expect(checkedElementCount([3, -1]) == nil)
        #expect(checkedElementCount([7, 33, 1]) == 231)
        #expect(checkedElementCount([]) == 1)
        #expect(checkedFloatBytes(Int.max / 2) == nil)
        #expect(throws: TensorError.self) { try Tensor([1, 2], shape: [Int.max, 2], on: .cpu) }
        #expect(throws: TensorError.self) { try Tensor([1, 2], shape: [1 << 40, 1 << 40], on: .cpu) }
        let x = Tensor.ones([2, 3], on: .cpu)
        #expect(throws: TensorError.self) { try x.reshaped([Int.max, 2, -1]) }
        #expect(throws: TensorError.self) { try x.reshaped([1 << 40, 1 << 40, 6]) }
        #expect(throws: TensorError.self) { try x.broadcast(to: [1 << 40, 1 << 40, 3]) }
        #expect(try x.reshaped([3, -1]).shape == [3, 2])
        do {
            try Device.cpu.checkAllocation(shape: [1 << 40, 1 << 40], for: "the weight")
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("more elements than a 64-bit count can hold"), "\(error)")
        }
    }

    @Test(arguments: TestDevices.all) func tooLargeAllocationsNameTheBytesAndTheDevice(device: Device) {
        let memory = device.memory
        #expect(memory.largestBuffer > 0 && memory.available > 0 && memory.total >= memory.available)
        do {
            try device.checkAllocation(shape: [784, 2_000_000_000], for: "Dense(784 -> 2000000000): the weight")
            Issue.record("6 TB fit on \(device)")
        } catch let error as DeviceError {
            guard case .outOfMemory(_, let bytes, let name, let limit, _) = error else {
                Issue.record("expected outOfMemory, got \(error)")
                return
            }
            #expect(bytes == 784 * 2_000_000_000 * 4)
            #expect(name == device.name)
            #expect(limit <= memory.total)
            #expect(error.description.hasPrefix("Dense(784 -> 2000000000): the weight needs 5.7 TiB, the device \(device.name) has "),
                    "\(error.description)")
        } catch {
            Issue.record("unexpected \(error)")
        }
        // What fits passes.
        #expect(throws: Never.self) { try device.checkAllocation(shape: [512, 784], for: "a weight") }
    }

    @Test func anOpenCLBufferLargerThanTheDriverAllowsIsRefused() throws {
        guard TestDevices.openCLAvailable else { return }
        let device = TestDevices.openCL
        let m = device.memory
        guard m.largestBuffer < m.available else { return }
        do {
            try device.checkAllocation(bytes: m.largestBuffer + 4, for: "a buffer")
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("largest single buffer"), "\(error)")
        }
    }

    @Test(arguments: TestDevices.all) func initializersCheckSizesBeforeDrawing(device: Device) {
        for initializer: Initializer in [.xavierUniform, .zeros, .heNormal] {
            do {
                _ = try initializer.make([784, 2_000_000_000], seed: 1, on: device)
                Issue.record("\(initializer) made a 6 TB tensor")
            } catch {
                #expect("\(error)".contains("Initializer.\(initializer) of shape [784, 2000000000] needs 5.7 TiB"), "\(error)")
            }
        }
    }

    @Test func aDenseNetworkTooLargeForTheDeviceNamesTheLayer() throws {
        let plan = try DenseNetworkMemory(sizes: [784, 2_000_000_000, 10], batchSize: 128, optimizerStateTensors: 2)
        #expect(plan.layers[0].weightShape == [2_000_000_000, 784])
        do {
            try plan.check(on: .cpu)
            Issue.record("no error")
        } catch {
            #expect("\(error)".hasPrefix("Dense(784 -> 2000000000): the weight [2000000000, 784] needs 5.7 TiB, the device cpu has "),
                    "\(error)")
        }
    }

    /// Every weight fits on its own but training as a whole does not: the error gives the total and its parts.
    @Test func theSumOfAllLayersIsChecked() throws {
        let available = Device.cpu.memory.available
        // Two square hidden layers whose weights take half the available memory each.
        let hidden = Int((Double(available) / 8).squareRoot())
        let plan = try DenseNetworkMemory(sizes: [784, hidden, hidden, 10], batchSize: 128, optimizerStateTensors: 2)
        #expect(plan.trainingBytes > available)
        do {
            try plan.check(on: .cpu)
            Issue.record("no error")
        } catch {
            #expect("\(error)".hasPrefix("training 784-\(hidden)-\(hidden)-10 with batches of 128 (parameters "), "\(error)")
            #expect("\(error)".contains("of memory available"), "\(error)")
        }
    }

    @Test func aModelThatFitsPassesAndItsBytesAreExact() throws {
        let plan = try DenseNetworkMemory(sizes: [784, 512, 256, 10], batchSize: 128, optimizerStateTensors: 2)
        try plan.check(on: .cpu)
        let model = Sequential {
            Dense(inputSize: 784, outputSize: 512, activation: .relu, device: .cpu)
            Dense(inputSize: 512, outputSize: 256, activation: .relu, device: .cpu)
            Dense(inputSize: 256, outputSize: 10, device: .cpu)
        }
        #expect(plan.parameterBytes == model.parameterCount * 4)
        #expect(plan.activationBytes == 4 * 128 * (784 + 2 * (512 + 256 + 10)))
        #expect(plan.trainingBytes == 4 * plan.parameterBytes + plan.activationBytes)
        #expect(throws: DeviceError.self) {
            try DenseNetworkMemory(sizes: [784, Int.max / 2, 10], batchSize: 1, optimizerStateTensors: 0)
        }
        #expect(throws: InvalidValueError.self) {
            try DenseNetworkMemory(sizes: [784, 0, 10], batchSize: 1, optimizerStateTensors: 0)
        }
    }

    @Test func hostMemoryIsReadFromMeminfo() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n"
        let parsed = HostMemory.parseMeminfo(text)
        #expect(parsed.total == 24_000_000 * 1024)
        #expect(parsed.available == 20_000_000 * 1024)
        #expect(HostMemory.total > 0)
        #expect(HostMemory.available < HostMemory.total)
    }

    @Test func byteCountsReadWell() {
        #expect(formatBytes(100) == "100 bytes")
        #expect(formatBytes(3 * 1024 + 512) == "3.5 KiB")
        #expect(formatBytes(6_272_000_000_000) == "5.7 TiB")
        #expect(formatBytes(40 << 30) == "40 GiB")
    }
}

/// Issue 10, class 6: resuming validates the checkpoint's values like command-line values, lets the command line
/// win, and says what happened.
@Suite struct ResumeTests {
    private func model() -> Sequential {
        Sequential { Dense(inputSize: 3, outputSize: 2, seed: 1, device: .cpu) }
    }

    private func savedCheckpoint(epoch: Int, learningRate: Float, baseLearningRate: Float? = nil,
                                 history: History = History()) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString).safetensors")
        let m = model()
        let sgd = try SGD(parameters: m.parameters, learningRate: 0.1)
        sgd.learningRate = learningRate
        try TrainingCheckpoint.save(model: m, optimizer: sgd, epoch: epoch, seed: 3, baseLearningRate: baseLearningRate,
                                    history: history, to: url)
        return url
    }

    @Test func aNegativeLearningRateInACheckpointIsRefused() throws {
        for (lr, base) in [(Float(-0.5), Float?.none), (0.1, -2), (.infinity, nil)] {
            let url = try savedCheckpoint(epoch: 2, learningRate: lr, baseLearningRate: base)
            defer { try? FileManager.default.removeItem(at: url) }
            let m = model()
            let sgd = try SGD(parameters: m.parameters, learningRate: 0.1)
            expectCheckpointError({ try TrainingCheckpoint.load(from: url, into: m, optimizer: sgd) },
                                  contains: [url.path, "must be a finite number >= 0"])
            #expect(sgd.learningRate == 0.1, "the optimizer changed before the error")
        }
    }

    @Test func aBadHistoryEntryIsAnErrorNotDropped() throws {
        let m = model()
        let bad = [
            (#"{"epoch":[1,2],"loss":[0.5,"x"]}"#, "history metric 'loss' entry 1"),
            (#"{"epoch":[1,2],"loss":[0.5]}"#, "one value per epoch"),
            (#"{"epoch":[1,1],"loss":[0.5,0.4]}"#, "history epoch entry 1"),
            (#"{"epoch":[1,2.5],"loss":[0.5,0.4]}"#, "history epoch entry 1"),
            (#"{"epoch":[1],"loss":[true]}"#, "history metric 'loss' entry 0"),
            (#"{"loss":[1]}"#, "'epoch' list"),
            (#"{"epoch":[1,2,3,4],"loss":[1,2,3,4]}"#, "history up to epoch 4 but says 2 epochs"),
            ("not json", "must be JSON"),
        ]
        for (history, expected) in bad {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("history-\(UUID().uuidString).safetensors")
            defer { try? FileManager.default.removeItem(at: url) }
            var metadata = ["format": "myelin-training-checkpoint", "epoch": "2", "seed": "1", "history": history]
            metadata[SafeTensors.layoutKey] = SafeTensors.currentLayout
            try SafeTensors.save(m.namedTensors, metadata: metadata, to: url)
            expectCheckpointError({ try TrainingCheckpoint.load(from: url, into: m, optimizer: nil) }, contains: [url.path, expected])
        }
    }

    @Test func historiesRoundTripThroughValidation() throws {
        var h = History()
        h.append(epoch: 1, ["loss": 0.5, "accuracy": 0.25])
        h.append(epoch: 2, ["loss": 0.125])
        let back = try History(validatingJSON: h.json())
        #expect(back.epochs == [1, 2])
        #expect(back["loss"] == [0.5, 0.125])
        #expect(back["accuracy"]?[0] == 0.25 && back["accuracy"]?[1].isNaN == true)
        #expect(try History(validatingJSON: #"{"epoch":[]}"#).count == 0)
    }

    @Test func theCommandLineWinsAndTheNoteSaysSo() throws {
        let url = try savedCheckpoint(epoch: 7, learningRate: 0.001)
        defer { try? FileManager.default.removeItem(at: url) }
        let m = model()
        let sgd = try SGD(parameters: m.parameters, learningRate: 0.5)
        let c = try TrainingCheckpoint.load(from: url, into: m, optimizer: sgd)
        #expect(c.learningRate == 0.001)
        #expect(sgd.learningRate == 0.001)

        let plan = try c.resumePlan(epochs: 10, defaultEpochs: 5, learningRate: 0.01, source: "run.safetensors")
        #expect(plan == ResumePlan(initialEpoch: 7, epochs: 10, learningRate: 0.01, baseLearningRate: 0.01,
                                   note: "resuming from epoch 7 of run.safetensors, training to epoch 10; learning rate 0.01 from the command line (the checkpoint had 0.001)"))
        let kept = try c.resumePlan(epochs: 9, defaultEpochs: 5, learningRate: nil, source: "run.safetensors")
        #expect(kept.learningRate == 0.001 && kept.epochs == 9 && kept.initialEpoch == 7)
        #expect(kept.note.hasSuffix("learning rate 0.001 from the checkpoint"))
        // A command-line value gets the same rule.
        #expect(throws: InvalidValueError.self) {
            try c.resumePlan(epochs: 10, defaultEpochs: 5, learningRate: -1, source: "run.safetensors")
        }
    }

    @Test func fewerEpochsThanTheCheckpointHasDoneIsAnError() throws {
        let url = try savedCheckpoint(epoch: 7, learningRate: 0.001)
        defer { try? FileManager.default.removeItem(at: url) }
        let m = model()
        let c = try TrainingCheckpoint.load(from: url, into: m, optimizer: nil)
        for asked in [2, 7] {
            do {
                _ = try c.resumePlan(epochs: asked, defaultEpochs: 10, learningRate: nil, source: "run.safetensors")
                Issue.record("--epochs \(asked) accepted when 7 are done")
            } catch {
                #expect("\(error)" == "--epochs counts all epochs, so it must be more than the 7 epochs run.safetensors has already done (ask for 8 or more), got \(asked)")
            }
        }
        do {
            _ = try c.resumePlan(epochs: nil, defaultEpochs: 5, learningRate: nil, source: "run.safetensors")
            Issue.record("the default of 5 epochs accepted when 7 are done")
        } catch {
            #expect("\(error)".hasPrefix("the default --epochs counts all epochs"), "\(error)")
        }
    }
}

/// Issue 10, class 10: the values the `myelin` command reads are checked by these helpers.
@Suite struct CommandLineValueTests {
    @Test func layerSizesNameTheBadItem() throws {
        #expect(try ValueCheck.layerSizes("512,256") == [512, 256])
        #expect(try ValueCheck.layerSizes(" 64 , 32 ") == [64, 32])
        for (text, expected) in [("64,abc", "'abc' is not one"), ("64,,32", "empty size"), ("64,", "empty size"),
                                 ("0", "0 is not"), ("-5,3", "-5 is not"), ("", "needs sizes like 512,256"),
                                 ("99999999999999999999", "is not one")] {
            do {
                _ = try ValueCheck.layerSizes(text)
                Issue.record("'\(text)' accepted")
            } catch {
                #expect("\(error)".hasPrefix("--hidden "), "\(error)")
                #expect("\(error)".contains(expected), "'\(error)' does not say '\(expected)'")
            }
        }
    }

    @Test func numbersAreCheckedWithTheirNames() {
        #expect(throws: Never.self) { try ValueCheck.learningRate(0.01, name: "--lr") }
        #expect(throws: Never.self) { try ValueCheck.learningRate(0, name: "--lr") }
        for bad: Float in [-1, .nan, .infinity] {
            do {
                try ValueCheck.learningRate(bad, name: "--lr")
                Issue.record("--lr \(bad) accepted")
            } catch {
                #expect("\(error)" == "--lr must be a finite number >= 0, got \(String(format: "%g", Double(bad)))")
            }
        }
        do {
            try ValueCheck.learningRate(-1, name: "--lr")
        } catch {
            #expect("\(error)" == "--lr must be a finite number >= 0, got -1")
        }
        #expect(throws: Never.self) { try ValueCheck.atLeast(1, 3, name: "--runs") }
        do {
            try ValueCheck.atLeast(1, 0, name: "--runs")
            Issue.record("--runs 0 accepted")
        } catch {
            #expect("\(error)" == "--runs must be at least 1, got 0")
        }
    }
}
