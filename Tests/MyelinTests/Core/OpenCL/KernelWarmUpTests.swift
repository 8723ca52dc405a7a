import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `Device.warmUpKernels`: programs built on several threads into the program cache, kept for their first launch,
/// and loaded from the cache by the next device.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct KernelWarmUpTests {
    func device(cache: URL) throws -> (OpenCLBackend, Device) {
        var environment = ProcessInfo.processInfo.environment
        environment["MYELIN_CACHE_DIR"] = cache.path
        environment["MYELIN_KERNELS_DIR"] = nil
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0], environment: environment)
        return (backend, Device(backend: backend))
    }

    @Test func buildsInParallelKeepsAndCaches() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let files = ["elementwise.cl", "reduce.cl", "layout.cl"]
        let (backend, device) = try device(cache: folder)
        let report = try #require(device.warmUpKernels(files: files, gemmVariants: false, threads: 3))
        #expect(report.programs == files.sorted() && report.failed.isEmpty && report.fromCache == 0, "\(report)")
        #expect(report.threads == 3 && report.seconds > 0)
        #expect(backend.builtProgramFiles == files.sorted())
        // Kept: a launch uses the program built (nothing more is built), and it computes.
        let x = try Tensor([1, 4, 9], shape: [3], on: device)
        #expect(try x.sqrt().toArray() == [1, 2, 3])
        #expect(backend.builtProgramFiles == files.sorted())
        // Built already: nothing to do.
        #expect(device.warmUpKernels(files: files, gemmVariants: false)?.programs.isEmpty == true)
        // The next device finds them in the cache; an excluded file is left out, an unknown name is reported.
        let (_, next) = try self.device(cache: folder)
        let again = try #require(next.warmUpKernels(files: files + ["nowhere.cl"], excluding: ["layout.cl"], gemmVariants: false, threads: 2))
        #expect(again.programs == ["elementwise.cl", "reduce.cl"] && again.fromCache == 2, "\(again)")
        #expect(again.failed.count == 1 && again.failed[0].contains("nowhere.cl: no such kernel file"), "\(again.failed)")
        #expect(Device.cpu.warmUpKernels() == nil)
    }

    /// The GEMM variants the defaults choose are built too (PoCL: the packed panels of the large products).
    @Test func buildsTheDefaultGemmVariants() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (backend, device) = try device(cache: folder)
        let variants = Set(backend.defaultGemmVariants)
        let report = try #require(device.warmUpKernels(files: [], gemmVariants: true, threads: 2))
        #expect(report.programs.count == variants.count && report.failed.isEmpty, "\(report)")
        for v in variants { #expect(backend.variantPrograms[v] != nil, "\(v)") }
    }
}
