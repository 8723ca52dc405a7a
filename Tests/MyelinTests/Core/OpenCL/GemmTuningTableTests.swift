import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The GEMM tuning machinery: variant names, shape classes, the table file (current, stale, unreadable), the
/// runtime following the table, `myelin tune`'s measurement on PoCL, and the built-in defaults by device type.
/// The variants' results are checked in GemmTuningTests (PoCL) and StrictKernelTests (Oclgrind).
@Suite struct GemmTuningTableTests {
    /// A fresh cache folder holding copies of the cache entries of the main program and of the variants' programs
    /// (so that the backend does not build them again).
    func cacheFolder(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("myelin-tuning-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        if let info = OpenCLPlatforms.devices().first {
            let home = ProgramCache.directory(environment: [:])
            let variantSource = try KernelLibrary.gemmVariantSource(kernelsDirectory: nil)
            let entries = [ProgramCache.file(source: try KernelLibrary.source(environment: [:]), info: info, directory: home)]
                + (GemmVariant.panelCandidates + GemmVariant.tileCandidates).map {
                    ProgramCache.file(source: variantSource, info: info, directory: home, defines: $0.defines)
                }
            for entry in entries where FileManager.default.fileExists(atPath: entry.path) {
                try? FileManager.default.copyItem(at: entry, to: dir.appendingPathComponent(entry.lastPathComponent))
            }
        }
        return dir
    }

    func table(for info: OpenCLDeviceInfo, classes: [String: String], hash: String? = nil) -> GemmTuningTable {
        GemmTuningTable(format: GemmTuningTable.format, device: info.name, driver: info.driverVersion,
                        platform: info.platformVersion,
                        kernelSourceHash: hash ?? GemmTuningTable.sourceHash(KernelLibrary.embedded),
                        created: "2026-12-01T00:00:00Z", budgetSeconds: 1,
                        classes: classes.mapValues { .init(kernel: $0, gflops: 1, shape: "1x1x1", defaultKernel: "direct",
                                                           defaultGflops: 1) })
    }

    @Test func variantNamesRoundTrip() {
        for v in GemmVariant.panelCandidates + GemmVariant.tileCandidates + GemmVariant.splitCandidates
            + [GemmTuningTests.kBlockedPanel, GemmTuningTests.smallSplit] + GemmTuningTests.smallFrags {
            #expect(GemmVariant(name: v.description) == v)
            #expect(GemmKernelChoice.parse(v.description) == .variant(v))
        }
        for k: GemmKernelChoice.Kernel in [.direct, .skinny(rows: 4), .skinny(rows: 8), .block(.init(rows: 8, columns: 16)),
                                           .nt(.init(rows: 4, columns: 4))] {
            #expect(GemmKernelChoice.parse(k.name) == k)
        }
        // Malformed or unsupported parameters.
        for bad in ["panel:6x12:kc256:mb8:nb4", "panel:0x16:kc256:mb8:nb4", "panel:6x16:kc256:mb0:nb4", "tile:64x64:k16:w3x4",
                    "tile:64x64:k0:w4x4", "tile:64x64:w4x4", "tile:32x32:k16:w4x4:s0", "tile:32x32:k16:w4x4:s65",
                    "tile:32x32:k16:w4x4:8", "panel", "block:7x7", "",
                    // GPU-grade tiles: a vector width of 3, one that does not divide the per-item block, prefetch 2,
                    // a missing prefetch, tiles that do not split into whole vector loads per item.
                    "tile:128x128:k16:w8x8:v3:p1", "tile:128x128:k16:w6x8:v4:p1", "tile:128x128:k16:w8x8:v4:p2",
                    "tile:128x128:k16:w8x8:v4", "tile:128x128:k4:w8x8:v4:p1", "tile:128x128:k16:w8x8:p1:v4"] + ["tiled", "packed:8x16", "packedr:8x16", "block:4x32", "nt:4x6"] {
            #expect(GemmKernelChoice.parse(bad) == nil, "\(bad)")
        }
        // GPU-grade tiles: 256 items and 17 KiB of local memory for 128 x 128; one program per transpose, the
        // transposes left out of the name.
        let frag = GemmVariant.frag(128, 128, k: 16, w: 8, 8, slices: 4)
        #expect(frag.description == "tile:128x128:k16:w8x8:v4:p1:s4" && frag.workGroup == [16, 16, 1])
        #expect(frag.localBytes == 4 * 16 * (132 + 132) && frag.mainKernel == "gemm_frag_split")
        #expect(GemmVariant(name: "tile:128x64:k16:w8x8:v2:p0") == .frag(128, 64, k: 16, w: 8, 8, vector: 2, prefetch: false))
        #expect(Set(frag.programs.map(\.defines)).count == 4 && frag.programs.allSatisfy { $0.slices == 1 })
        #expect(frag.specialised(transA: true, transB: true).description == frag.description)
        #expect(frag.specialised(transA: true, transB: false).defines.hasSuffix("-DTRANS_A=1 -DTRANS_B=0"))
        #expect(frag.kSlices(k: 100) == (4, 32))
        #expect(GemmVariant.tile(tm: 64, tn: 32, tk: 8, wm: 4, wn: 2).workGroup == [16, 16, 1])
        #expect(GemmVariant.tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4).localBytes == 4 * 16 * 66)
        // K-split names: ":sS" only when S > 1; the same program (defines) as the tile without a split.
        let split = GemmVariant.tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4, slices: 8)
        #expect(split.description == "tile:32x32:k16:w4x4:s8")
        #expect(GemmVariant(name: "tile:32x32:k16:w4x4:s8") == split)
        #expect(GemmVariant(name: "tile:32x32:k16:w4x4:s1") == .tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4))
        #expect(split.defines == GemmVariant.tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4).defines)
        #expect(split.mainKernel == "gemm_tile_split")
        // Slices of whole TK steps, none empty: K = 100 in at most 8 slices of 16 -> 7 slices (6 x 16 + 4).
        #expect(split.kSlices(k: 100) == (7, 16))
        #expect(split.kSlices(k: 16384) == (8, 2048))
        #expect(split.kSlices(k: 5) == (1, 16))
        #expect(GemmVariant.tile(tm: 8, tn: 8, tk: 4, wm: 2, wn: 2, slices: 3).kSlices(k: 33) == (3, 12))
        #expect(GemmVariant.tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4).kSlices(k: 16384) == (1, 16384))
    }

    @Test func shapeClasses() {
        func cls(_ m: Int, _ k: Int, _ n: Int, tA: Bool = false, tB: Bool = false) -> String {
            GemmShapeClass(GemmShape(m: m, n: n, k: k, transA: tA, transB: tB)).name
        }
        #expect(cls(128, 256, 10) == "narrow")
        #expect(cls(128, 784, 512, tB: true) == "nt-small")
        #expect(cls(512, 128, 784, tA: true) == "tn-small")
        #expect(cls(128, 512, 784) == "nn-small")
        #expect(cls(1024, 1024, 1024) == "nn-medium")
        #expect(cls(1024, 1024, 1024, tA: true, tB: true) == "nn-medium")
        #expect(cls(4096, 4096, 4096, tB: true) == "nt-large")
        #expect(cls(16384, 288, 64) == "tall")
        #expect(cls(288, 16384, 64, tA: true) == "deep")
        // A convolution's products: the first layer's weight gradient is deep although it has 9 columns; the
        // forward product and the input gradient (N = batch·pixels) are wide.
        #expect(cls(32, 100_352, 9, tB: true) == "deep")
        #expect(cls(64, 288, 25088) == "wide")
        #expect(cls(288, 64, 25088, tA: true) == "wide")
        for (c, s) in GemmShapeClass.representatives { #expect(GemmShapeClass(s) == c, "\(c)") }
    }

    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func tableLookupAndRuntimeChoice() throws {
        let info = OpenCLPlatforms.devices()[0]
        let dir = try cacheFolder("lookup")
        defer { try? FileManager.default.removeItem(at: dir) }
        let hash = GemmTuningTable.sourceHash(KernelLibrary.embedded)
        let file = GemmTuningTable.file(for: info, directory: dir)
        #expect(GemmTuningTable.lookup(for: info, directory: dir, sourceHash: hash) == .absent)
        #expect(!GemmTuningStatus.of(info, environment: ["MYELIN_CACHE_DIR": dir.path]).isTuned)

        let chosen = "panel:4x24:kc256:mb8:nb4"
        let t = table(for: info, classes: ["nn-small": chosen, "narrow": "skinny:8", "nt-small": "no-such-kernel"])
        try t.save(to: file)
        #expect(GemmTuningTable.lookup(for: info, directory: dir, sourceHash: hash) == .current(t))
        let status = GemmTuningStatus.of(info, environment: ["MYELIN_CACHE_DIR": dir.path])
        #expect(status.isTuned && status.file == file && status.summary.hasPrefix("tuned (3 shape classes"))

        // The runtime follows the table, and the defaults where it has nothing usable.
        let backend = try OpenCLBackend(index: 0, info: info, environment: ["MYELIN_CACHE_DIR": dir.path])
        #expect(backend.gemmKernel(for: GemmShape(m: 128, n: 784, k: 512)).name == chosen)
        #expect(backend.gemmKernel(for: GemmShape(m: 128, n: 10, k: 256)) == .skinny(rows: 8))
        // Tiny products (the XOR lab's) take one direct launch whatever the table says, never a pack and a compute.
        #expect(backend.gemmKernel(for: GemmShape(m: 4, n: 3, k: 2, transB: true)) == .direct)
        #expect(backend.gemmKernel(for: GemmShape(m: 16, n: 16, k: 16, transA: true)) == .direct)
        #expect(backend.gemmKernel(for: GemmShape(m: 16, n: 17, k: 16)) != .direct)
        let forward = GemmShape(m: 128, n: 512, k: 784, transB: true)
        #expect(backend.gemmKernel(for: forward) == GemmDefaults.kernel(for: forward, info: info, limits: backend.limits))
        let device = Device(backend: backend)
        let x = try Tensor(testValues(128 * 512, seed: 1), shape: [128, 512], on: device)
        let w = try Tensor(testValues(512 * 784, seed: 2), shape: [512, 784], on: device)
        expectClose(try x.matmul(w).toArray(), Reference.gemm(try x.toArray(), try w.toArray(), m: 128, n: 784, k: 512),
                    rtol: 1e-4, atol: 1e-4, "matmul through the table's \(chosen)")

        // Another kernel source or another driver makes the table stale; garbage is unreadable.
        if case .stale = GemmTuningTable.lookup(for: info, directory: dir, sourceHash: "0") {} else { Issue.record("not stale") }
        var other = t
        other.driver = "another driver"
        try other.save(to: file)
        if case .stale = GemmTuningTable.lookup(for: info, directory: dir, sourceHash: hash) {} else { Issue.record("not stale") }
        try Data("not json".utf8).write(to: file)
        if case .unreadable = GemmTuningTable.lookup(for: info, directory: dir, sourceHash: hash) {} else {
            Issue.record("not unreadable")
        }
        #expect(!GemmTuningStatus.of(info, environment: ["MYELIN_CACHE_DIR": dir.path]).isTuned)
    }

    /// The tuner on PoCL with small products and a short budget: it measures, writes a table the runtime reads.
    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func tunerWritesATableTheRuntimeUses() throws {
        let info = OpenCLPlatforms.devices()[0]
        let dir = try cacheFolder("tuner")
        defer { try? FileManager.default.removeItem(at: dir) }
        let backend = try OpenCLBackend(index: 0, info: info, environment: ["MYELIN_CACHE_DIR": dir.path])
        var lines: [String] = []
        // The budget only has to exceed what these small products take (kernels built on a busy machine included).
        var tuner = GemmTuner(backend: backend, budget: 600, progress: { lines.append($0) })
        tuner.classes = [(GemmShapeClass(name: "narrow"), GemmShapeClass.shape(33, 40, 10)),
                         (GemmShapeClass(name: "nn-small"), GemmShapeClass.shape(65, 47, 70)),
                         (GemmShapeClass(name: "nt-small"), GemmShapeClass.shape(40, 33, 50, transB: true))]
        let report = try tuner.run()
        #expect(report.results.map(\.shapeClass) == ["narrow", "nn-small", "nt-small"])
        #expect(report.results.allSatisfy { $0.gflops > 0 && $0.measured >= 2 })
        #expect(!lines.isEmpty)
        guard case .current(let table) = GemmTuningTable.lookup(for: info, directory: dir,
                                                               sourceHash: GemmTuningTable.sourceHash(KernelLibrary.embedded)) else {
            Issue.record("no current table in \(dir.path)")
            return
        }
        #expect(table.classes["nn-small"]?.kernel == report.results[1].kernel)
        #expect(backend.gemmKernel(for: GemmShape(m: 65, n: 70, k: 47)).name == report.results[1].kernel)

        // A budget already spent measures nothing and keeps the defaults.
        let spent = try GemmTuner(backend: backend, budget: 1e-9, progress: { _ in }).run()
        #expect(spent.results.isEmpty && spent.skippedClasses.count == GemmShapeClass.representatives.count)
    }

    /// Without a table a GPU gets local-memory tiles that fit its limits (direct when none fits); a CPU device
    /// the register blocks for small products and the K-blocked panels from 2²⁶ FLOPs on.
    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func defaultsByDeviceType() throws {
        var info = OpenCLPlatforms.devices()[0]
        let big = GemmShape(m: 1024, n: 1024, k: 1024)
        let cpuLimits = LaunchLimits(device: info.device, cap: nil)
        if !info.isGPU {
            #expect(GemmDefaults.kernel(for: big, info: info, limits: cpuLimits) == .variant(GemmDefaults.cpuLarge))
            #expect(GemmDefaults.kernel(for: GemmShape(m: 64, n: 64, k: 64), info: info, limits: cpuLimits)
                    == .block(GemmKernelChoice.defaultBlock))
            #expect(GemmDefaults.kernel(for: GemmShape(m: 64, n: 64, k: 64, transB: true), info: info, limits: cpuLimits)
                    == .nt(GemmKernelChoice.ntBlock))
            // From 2048 columns on op(A) is packed too, and the blocks of C per work-item are larger.
            #expect(GemmDefaults.kernel(for: GemmShape(m: 2048, n: 2048, k: 2048), info: info, limits: cpuLimits)
                    == .variant(GemmDefaults.cpuWide))
            #expect(GemmDefaults.kernel(for: GemmShape(m: 4096, n: 2047, k: 64), info: info, limits: cpuLimits)
                    == .variant(GemmDefaults.cpuLarge))
            #expect(GemmDefaults.kernel(for: GemmShape(m: 128, n: 10, k: 256), info: info, limits: cpuLimits) == .skinny(rows: 4))
        }
        info.isGPU = true
        info.vendor = "Some GPU vendor"
        for (cap, expected) in [(1024, "tile:32x32:k16:w4x4"), (64, "tile:32x32:k16:w4x4"), (16, "direct")] {
            let limits = LaunchLimits(device: info.device, cap: cap)
            #expect(GemmDefaults.kernel(for: big, info: info, limits: limits).name == expected, "cap \(cap)")
        }
        // NVIDIA and AMD: the GPU-grade tiles, the largest that gives every compute unit a work-group; under a cap
        // of 64 items the 32 x 32 one (the larger ones are refused, never chosen).
        info.vendor = "NVIDIA Corporation"
        info.computeUnits = 132
        for (shape, expected) in [(big, "tile:64x64:k16:w4x4:v4:p1"),
                                  (GemmShape(m: 4096, n: 4096, k: 4096), "tile:128x128:k16:w8x8:v4:p1"),
                                  (GemmShape(m: 2048, n: 1024, k: 512, transA: true), "tile:128x64:k16:w8x8:v4:p1"),
                                  (GemmShape(m: 256, n: 256, k: 256), "tile:32x32:k16:w4x4:v4:p1")] {
            #expect(GemmDefaults.kernel(for: shape, info: info, limits: LaunchLimits(device: info.device, cap: 1024)).name
                    == expected, "\(shape)")
        }
        #expect(GemmDefaults.kernel(for: big, info: info, limits: LaunchLimits(device: info.device, cap: 64)).name
                == "tile:32x32:k16:w4x4:v4:p1")
        info.vendor = "Advanced Micro Devices, Inc."
        #expect(GemmDefaults.kernel(for: GemmShape(m: 4096, n: 4096, k: 4096), info: info,
                                    limits: LaunchLimits(device: info.device, cap: 1024)).name == "tile:128x128:k16:w8x8:v4:p1")
        info.vendor = "NVIDIA Corporation"
        #expect(GemmDefaults.kernel(for: GemmShape(m: 128, n: 10, k: 256), info: info, limits: cpuLimits) == .direct)

        // Deep products split K so that the work-groups are at least twice the compute units, each slice at
        // least 4 K tiles, at most 64 slices; even with 9 columns (a convolution's first weight gradient).
        let limits = LaunchLimits(device: info.device, cap: 1024)
        info.computeUnits = 132
        let firstConvGradient = GemmShape(m: 32, n: 9, k: 100_352, transB: true)
        #expect(GemmDefaults.kernel(for: firstConvGradient, info: info, limits: limits).name == "tile:32x32:k16:w4x4:v4:p1:s64")
        #expect(GemmDefaults.kernel(for: GemmShape(m: 8, n: 8, k: 256), info: info, limits: limits).name
                == "tile:32x32:k16:w4x4:v4:p1:s4")
        #expect(GemmDefaults.kernel(for: GemmShape(m: 2, n: 2, k: 100), info: info, limits: limits).name
                == "tile:32x32:k16:w4x4:v4:p1")
        info.computeUnits = 4
        // 3 x 3 tiles of 128 already give 9 work-groups for 8 wanted: no split.
        #expect(GemmDefaults.kernel(for: GemmShape(m: 384, n: 384, k: 65_536), info: info, limits: limits).name
                == "tile:128x128:k16:w8x8:v4:p1")
        #expect(GemmDefaults.kernel(for: GemmShape(m: 64, n: 64, k: 8192), info: info, limits: limits).name
                == "tile:32x32:k16:w4x4:v4:p1:s2")

        // A tile the device refuses falls back to the largest smaller tile that fits, keeping the K-split; the
        // direct kernel only when none fits.
        let s = GemmShape(m: 64, n: 64, k: 8192)
        let tile64 = GemmVariant.tile(tm: 64, tn: 64, tk: 16, wm: 4, wn: 4, slices: 8)
        #expect(GemmDefaults.fallback(for: tile64, s, info: info) { _ in true }.name == "tile:32x32:k16:w4x4:v4:p1:s8")
        // A GPU-grade tile falls back along the list: the next GPU-grade one, then the plain tiles.
        let frag128 = GemmVariant.frag(128, 128, k: 16, w: 8, 8, slices: 4)
        #expect(GemmDefaults.fallback(for: frag128, s, info: info) { _ in true }.name == "tile:128x64:k16:w8x8:v4:p1:s4")
        #expect(GemmDefaults.fallback(for: frag128.specialised(transA: true, transB: false), s, info: info) {
            if case .frag = $0 { return false } else { return true }
        }.name == "tile:32x32:k16:w4x4:s4")
        #expect(GemmDefaults.fallback(for: tile64, s, info: info) { $0.localBytes < 4 * 16 * 66 }.name
                == "tile:16x16:k16:w2x2:s8")
        #expect(GemmDefaults.fallback(for: tile64, s, info: info) { _ in false } == .direct)
        #expect(GemmDefaults.fallback(for: tile64, GemmShape(m: 64, n: 64, k: 0), info: info) { _ in true } == .direct)
        info.isGPU = false
        #expect(GemmDefaults.fallback(for: tile64, s, info: info) { _ in true } == GemmKernelChoice.choose(s))
    }
}
