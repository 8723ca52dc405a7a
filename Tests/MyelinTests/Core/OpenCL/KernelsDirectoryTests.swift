import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A kernels folder given by `MYELIN_KERNELS_DIR` is checked when the device is created: a missing folder, a missing
/// or unreadable kernel file and a missing kernel function are errors naming the folder and what is missing.
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
