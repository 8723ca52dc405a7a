import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Kernel-cache entries are verified before they reach the driver (header, length, checksum); a bad one is rebuilt
/// and replaced; an unwritable cache folder means running without a cache, said once.
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
        // The shared device's entry of gemm_direct.cl (built by this process: a tiny product runs the direct kernel)
        // copied into the new cache folder, then damaged.
        _ = try Tensor.ones([2, 3], on: TestDevices.openCL).matmul(Tensor.ones([3, 2], on: TestDevices.openCL)).toArray()
        let source = shared.programSource(try #require(shared.programFiles.first { $0.name == "gemm_direct.cl" }))
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

    /// A process that died while the driver loaded an entry (PoCL asserting on a binary with a valid header) leaves
    /// its mark: the next build deletes that entry, says so, and rebuilds it from source. A mark of a running process
    /// (this one: a load in progress) is left alone, and a successful load leaves no mark.
    @Test func anEntryWhoseMarkSurvivedIsDeletedAndRebuilt() throws {
        guard TestDevices.openCLAvailable else { return }
        let backend = try #require(TestDevices.openCL.backend as? OpenCLBackend)
        let folder = try reliabilityTestFolder("mark")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = "// mark \(UUID().uuidString)\n" + Self.tinySource
        /// Builds `source` through the cache in `folder`; true when the program came from the cache.
        func fromCache() throws -> Bool {
            let built = try ProgramCache.build(context: backend.context, info: backend.info, source: source, directory: folder)
            clReleaseProgramForTest(built.program)
            return built.fromCache
        }
        #expect(try !fromCache())
        let file = ProgramCache.file(source: source, info: backend.info, directory: folder)
        let mark = ProgramCache.markFile(file)
        #expect(try fromCache() && !FileManager.default.fileExists(atPath: mark.path), "a good load leaves no mark")

        // This process's own mark: a load in progress, not a crash.
        try Data("\(getpid())\n".utf8).write(to: mark)
        #expect(ProgramCache.removeEntryWithSurvivingMark(file) == nil)
        #expect(FileManager.default.fileExists(atPath: file.path))

        // The mark of a process that has ended (a child that ran and exited), as a crash in the driver leaves it.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        try Data("\(child.processIdentifier)\n".utf8).write(to: mark)
        let message = try #require(ProgramCache.removeEntryWithSurvivingMark(file))
        #expect(message.contains(file.path) && message.contains("deleted it, rebuilding"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: file.path) && !FileManager.default.fileExists(atPath: mark.path))

        // Through build: a surviving mark (unreadable contents count as one) means a rebuild from source and a
        // new good entry.
        #expect(try !fromCache())
        try Data("garbage".utf8).write(to: mark)
        #expect(try !fromCache(), "the entry with a surviving mark was handed to the driver")
        #expect(!FileManager.default.fileExists(atPath: mark.path))
        #expect((try? ProgramCache.decode(Data(contentsOf: file)).get()) != nil, "no good entry after the rebuild")
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
