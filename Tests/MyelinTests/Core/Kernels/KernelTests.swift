import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The kernel sources embedded in the binary, program build errors, and the on-disk program cache.
@Suite struct KernelTests {
    static var kernelsDirectory: URL {
        repositoryRoot.appendingPathComponent("Kernels")
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
        // The program of each kernel file the device used was saved when it was first built.
        _ = Tensor.zeros([3], on: TestDevices.openCL)
        #expect(!backend.builtProgramFiles.isEmpty)
        for name in backend.builtProgramFiles {
            let file = try #require(backend.programFiles.first { $0.name == name })
            let deviceFile = ProgramCache.file(source: backend.programSource(file), info: backend.info)
            #expect(FileManager.default.fileExists(atPath: deviceFile.path), "no cached program at \(deviceFile.path)")
            #expect(deviceFile.deletingLastPathComponent().path == ProgramCache.directory.path)
        }

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

/// The kernel programs are built per file, on the first use of one of the file's kernels.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct LazyProgramTests {
    @Test func aNewDeviceBuildsOnlyTheFilesItsKernelsNeed() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        #expect(backend.builtProgramFiles.isEmpty)
        let device = Device(backend: backend)
        let x = try Tensor([1, -2, 3], shape: [3], on: device)
        let y = try x + x
        #expect(try y.toArray() == [2, -4, 6])
        let built = backend.builtProgramFiles
        #expect(built.contains("elementwise.cl"))
        #expect(!built.contains("conv.cl") && !built.contains("normalization.cl") && !built.contains("optimizers.cl"),
                "built \(built)")
    }

    /// A file whose program does not build is an error at the first use of its kernel, with the build log, thrown at
    /// the next check; no crash, and the other files' kernels work on.
    @Test func aFileThatDoesNotBuildIsAnErrorWithItsBuildLog() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        backend.programFiles.append((name: "zz_broken.cl",
                                     text: "__kernel void broken_in_test(__global float* x) { x[0] = undefined_name_in_lazy_test; }\n"))
        let device = Device(backend: backend)
        let x = Tensor.zeros([4], on: device)
        backend.launch(KernelProgram(file: "zz_broken.cl"), "broken_in_test", global: [1], args: [.buffer(x.buffer)])
        do {
            try device.check()
            Issue.record("a kernel whose program does not build launched")
        } catch let error as DeviceError {
            guard case .buildFailed(_, let log) = error else {
                Issue.record("expected buildFailed, got \(error)")
                return
            }
            #expect(log.contains("undefined_name_in_lazy_test"), "build log: \(log)")
        }
        #expect(try (x + 1).toArray() == [1, 1, 1, 1])
    }

    /// Every kernel is defined by exactly one file (so `launch(program, name)` names it without ambiguity), and a
    /// launch builds only the program it names.
    @Test func everyKernelIsDefinedByOneFile() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        let files = backend.programFiles
        var kernelsOf: [String: Set<String>] = [:]
        for file in files {
            let program = try ProgramCache.build(context: backend.context, info: backend.info,
                                                 source: backend.programSource(file)).program
            kernelsOf[file.name] = ProgramCache.kernelNames(program)
            OpenCLBackend.releaseProgram(program)
        }
        var definedBy: [String: [String]] = [:]
        for file in files {
            // Its own kernels: not those of the files it requires (which its program holds too).
            let required = KernelLibrary.requirements(of: file.text).reduce(into: Set<String>()) { $0.formUnion(kernelsOf[$1] ?? []) }
            let names = kernelsOf[file.name, default: []].subtracting(required)
            #expect(!names.isEmpty, "\(file.name) defines no kernel")
            for name in names { definedBy[name, default: []].append(file.name) }
        }
        for (name, owners) in definedBy { #expect(owners.count == 1, "\(name) is defined in \(owners)") }
        let fresh = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        let x = fresh.allocate(4)
        fresh.launch(.conv, "conv_gather_output", global: [1],
                     args: [.buffer(x), .buffer(x), .int(1), .int(1), .int(0), .int(1)])
        fresh.synchronize()
        #expect(fresh.builtProgramFiles == ["conv.cl"])
    }
}
