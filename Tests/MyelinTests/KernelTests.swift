import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The kernel sources embedded in the binary, program build errors, and the on-disk program cache.
@Suite struct KernelTests {
    static var kernelsDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Kernels")
    }

    /// Every `.cl` file in Kernels/ is embedded (listed as a resource in Package.swift and in
    /// `KernelLibrary.embedded`), byte for byte.
    @Test func everyKernelFileIsEmbedded() throws {
        let dir = Self.kernelsDirectory
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".cl") }.sorted()
        #expect(!names.isEmpty, "no kernels found in \(dir.path)")
        #expect(KernelLibrary.embedded.map(\.0) == names,
                "embedded \(KernelLibrary.embedded.map(\.0)), on disk \(names): list new kernel files in Package.swift and KernelLibrary.embedded")
        for (name, embedded) in KernelLibrary.embedded {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            #expect(embedded == text, "Kernels/\(name) differs from its embedded copy")
        }
    }

    @Test func theProgramJoinsCommonFirst() {
        let joined = KernelLibrary.join([("b.cl", "B"), ("common.cl", "C"), ("a.cl", "A")])
        #expect(joined == "// ---- common.cl\nC\n// ---- a.cl\nA\n// ---- b.cl\nB")
    }

    @Test func aBrokenProgramReportsItsBuildLog() throws {
        guard TestDevices.openCLAvailable else { return }
        let backend = try #require(TestDevices.openCL.backend as? OpenCLBackend)
        let source = "__kernel void broken(__global float* x) { x[0] = undefined_name_in_test; }\n"
        do {
            _ = try backend.buildProgram(source: source)
            Issue.record("a program with an undefined name built")
        } catch let error as DeviceError {
            guard case .buildFailed(let device, let log) = error else {
                Issue.record("expected buildFailed, got \(error)")
                return
            }
            #expect(device == backend.info.name)
            #expect(log.contains("undefined_name_in_test"), "build log: \(log)")
            #expect(error.description.contains("build failed") && error.description.contains(log))
        }
        #expect(!FileManager.default.fileExists(atPath: ProgramCache.file(source: source, info: backend.info).path))
    }

    @Test func builtProgramsAreCachedOnDisk() throws {
        guard TestDevices.openCLAvailable else { return }
        let backend = try #require(TestDevices.openCL.backend as? OpenCLBackend)
        // The device's own program was saved when it was first built.
        let deviceFile = ProgramCache.file(source: try KernelLibrary.source(), info: backend.info)
        #expect(FileManager.default.fileExists(atPath: deviceFile.path), "no cached program at \(deviceFile.path)")
        #expect(deviceFile.deletingLastPathComponent().path == ProgramCache.directory.path)

        // A source of its own: compiled the first time, loaded from the cache the second.
        let source = "// test \(UUID().uuidString)\n__kernel void twice(__global float* x) { x[get_global_id(0)] *= 2.0f; }\n"
        let file = ProgramCache.file(source: source, info: backend.info)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try backend.buildProgram(source: source) == false)
        #expect(FileManager.default.fileExists(atPath: file.path))
        #expect(try backend.buildProgram(source: source) == true)
        // A damaged cache file is rebuilt, not trusted.
        try Data("not a program".utf8).write(to: file)
        #expect(try backend.buildProgram(source: source) == false)
        #expect(try backend.buildProgram(source: source) == true)
    }

    @Test func cacheKeyDependsOnSourceAndDevice() throws {
        guard let info = OpenCLPlatforms.devices().first else { return }
        let k = ProgramCache.key(source: "a", options: "-x", info: info)
        #expect(k.count == 32)
        #expect(k == ProgramCache.key(source: "a", options: "-x", info: info))
        #expect(k != ProgramCache.key(source: "b", options: "-x", info: info))
        #expect(k != ProgramCache.key(source: "a", options: "-y", info: info))
        var other = info
        other.driverVersion += "+1"
        #expect(k != ProgramCache.key(source: "a", options: "-x", info: other))
    }
}
