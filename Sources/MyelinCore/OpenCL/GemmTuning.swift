import Foundation

// GEMM tuning: the parameterised kernels of Kernels/gemm_tuned.cl (`GemmVariant`), the shape classes a tuning
// table keys on (`GemmShapeClass`), the table itself (`GemmTuningTable`, JSON in the program cache folder), the
// built-in defaults by device type and vendor (`GemmDefaults`) and the measurement (`GemmTuner`, `myelin tune`).

/// One parameterised GEMM kernel of Kernels/gemm_tuned.cl: its own program, built with `defines`.
enum GemmVariant: Hashable, Sendable, CustomStringConvertible {
    /// CPU-style: packed panels, `mr` x (8 * `nv`) register blocks, K blocks of `kc` (0: all of K), `mb` row
    /// panels and `nb` column panels per work-item.
    case panel(mr: Int, nv: Int, kc: Int, mb: Int, nb: Int)
    /// GPU-style: `tm` x `tn` tiles of C per work-group through local memory of depth `tk`, `wm` x `wn` outputs
    /// per work-item. `slices` > 1 splits K: up to that many slices (of whole `tk` steps) each compute a partial
    /// product into a workspace, and a second kernel adds them in order and applies the epilogue (for products
    /// with few tiles of C and a long K, the `deep` class).
    case tile(tm: Int, tn: Int, tk: Int, wm: Int, wn: Int, slices: Int = 1)

    /// The name in tables, reports and `MYELIN_GEMM_KERNEL`: `panel:6x16:kc256:mb8:nb4`, `tile:64x64:k16:w4x4`,
    /// and with a K-split `tile:32x32:k16:w4x4:s8`.
    var description: String {
        switch self {
        case .panel(let mr, let nv, let kc, let mb, let nb): return "panel:\(mr)x\(8 * nv):kc\(kc):mb\(mb):nb\(nb)"
        case .tile(let tm, let tn, let tk, let wm, let wn, let slices):
            return "tile:\(tm)x\(tn):k\(tk):w\(wm)x\(wn)" + (slices > 1 ? ":s\(slices)" : "")
        }
    }

    /// Parses `description`; nil for anything else or parameters outside what the kernels support.
    init?(name: String) {
        let parts = name.split(separator: ":").map(String.init)
        func pair(_ s: String, prefix: String = "") -> (Int, Int)? {
            guard s.hasPrefix(prefix) else { return nil }
            let d = s.dropFirst(prefix.count).split(separator: "x").compactMap { Int($0) }
            return d.count == 2 ? (d[0], d[1]) : nil
        }
        func number(_ s: String, prefix: String) -> Int? { s.hasPrefix(prefix) ? Int(s.dropFirst(prefix.count)) : nil }
        if parts.count == 5, parts[0] == "panel", let (mr, nr) = pair(parts[1]), nr % 8 == 0,
           let kc = number(parts[2], prefix: "kc"), let mb = number(parts[3], prefix: "mb"),
           let nb = number(parts[4], prefix: "nb") {
            self = .panel(mr: mr, nv: nr / 8, kc: kc, mb: mb, nb: nb)
        } else if parts.count == 4 || parts.count == 5, parts[0] == "tile", let (tm, tn) = pair(parts[1]),
                  let tk = number(parts[2], prefix: "k"), let (wm, wn) = pair(parts[3], prefix: "w"),
                  let slices = parts.count == 5 ? number(parts[4], prefix: "s") : 1 {
            self = .tile(tm: tm, tn: tn, tk: tk, wm: wm, wn: wn, slices: slices)
        } else {
            return nil
        }
        guard isWellFormed else { return nil }
    }

    /// Parameters the kernels accept: positive sizes, tiles divisible by the per-item block, at most 16 x 4
    /// float8 accumulators per panel block, 1 to 64 K slices.
    var isWellFormed: Bool {
        switch self {
        case .panel(let mr, let nv, let kc, let mb, let nb):
            return (1...16).contains(mr) && (1...4).contains(nv) && kc >= 0 && mb >= 1 && nb >= 1
        case .tile(let tm, let tn, let tk, let wm, let wn, let slices):
            return tm > 0 && tn > 0 && tk > 0 && wm > 0 && wn > 0 && tm % wm == 0 && tn % wn == 0 && wm * wn <= 64
                && (1...64).contains(slices)
        }
    }

    /// The build options that select and size the kernels.
    var defines: String {
        switch self {
        case .panel(let mr, let nv, let kc, let mb, let nb):
            return "-DGEMM_PANEL -DMR=\(mr) -DNV=\(nv) -DKC=\(kc) -DMB=\(mb) -DNB=\(nb)"
        case .tile(let tm, let tn, let tk, let wm, let wn, _):
            // The K-split kernels are in the same program: the slice count is an argument.
            return "-DGEMM_TILE -DTM=\(tm) -DTN=\(tn) -DTK=\(tk) -DWM=\(wm) -DWN=\(wn)"
        }
    }

    /// The key `OpenCLBackend.kernel(_:)` builds a kernel of this variant's program from.
    func kernelKey(_ kernel: String) -> String { "\(kernel)|\(defines)" }

    /// The kernel that runs the variant's work-groups: `gemm_panel`, `gemm_tile`, or `gemm_tile_split` for a K-split.
    var mainKernel: String {
        switch self {
        case .panel: return "gemm_panel"
        case .tile(_, _, _, _, _, let slices): return slices > 1 ? "gemm_tile_split" : "gemm_tile"
        }
    }

    /// The K slices a product with `k` steps runs in: slices of whole `tk` steps, at most `slices` of them,
    /// none empty (1: no split); and the steps per slice.
    func kSlices(k: Int) -> (count: Int, length: Int) {
        guard case .tile(_, _, let tk, _, _, let slices) = self, slices > 1, k > 0 else { return (1, k) }
        let length = ((k + slices - 1) / slices + tk - 1) / tk * tk
        return ((k + length - 1) / length, length)
    }

    /// The work-group a tile variant needs (`reqd_work_group_size`); nil for panels (any size).
    var workGroup: [Int]? {
        if case .tile(let tm, let tn, _, let wm, let wn, _) = self { return [tn / wn, tm / wm, 1] }
        return nil
    }

    /// Bytes of local memory a work-group uses.
    var localBytes: Int {
        if case .tile(let tm, let tn, let tk, _, _, _) = self { return 4 * tk * (tm + 1 + tn + 1) }
        return 0
    }

    /// Whether the variant fits the device's launch limits (work-group size after any cap, per-dimension sizes,
    /// local memory); the kernel's own `CL_KERNEL_WORK_GROUP_SIZE` is checked after its program is built.
    func fits(_ limits: LaunchLimits) -> Bool {
        guard isWellFormed else { return false }
        guard let wg = workGroup else { return true }
        let withinDimensions = wg.indices.allSatisfy { $0 >= limits.maxWorkItemSizes.count || wg[$0] <= limits.maxWorkItemSizes[$0] }
        return wg.reduce(1, *) <= limits.maxWorkGroupSize && withinDimensions && localBytes <= limits.localMemorySize
    }

    /// The panel variants `myelin tune` measures on CPU-type devices (register blocks for 16 AVX2 registers and
    /// for 32 AVX-512 ones, K blocks of 128 to 512, one without K blocking for small products).
    static let panelCandidates: [GemmVariant] = [
        .panel(mr: 6, nv: 2, kc: 256, mb: 8, nb: 4), .panel(mr: 6, nv: 2, kc: 256, mb: 16, nb: 1),
        .panel(mr: 6, nv: 2, kc: 512, mb: 8, nb: 2), .panel(mr: 4, nv: 3, kc: 256, mb: 8, nb: 4),
        .panel(mr: 4, nv: 2, kc: 128, mb: 8, nb: 4), .panel(mr: 8, nv: 2, kc: 256, mb: 8, nb: 4),
        .panel(mr: 12, nv: 2, kc: 256, mb: 4, nb: 4), .panel(mr: 6, nv: 2, kc: 0, mb: 4, nb: 1),
    ]

    /// The tile variants `myelin tune` measures on GPU-type devices (work-groups of 64 and 256 items; those that
    /// do not fit a device are left out).
    static let tileCandidates: [GemmVariant] = [
        .tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4), .tile(tm: 64, tn: 64, tk: 16, wm: 8, wn: 8),
        .tile(tm: 64, tn: 64, tk: 16, wm: 4, wn: 4), .tile(tm: 128, tn: 128, tk: 8, wm: 8, wn: 8),
        .tile(tm: 128, tn: 64, tk: 16, wm: 8, wn: 4), .tile(tm: 64, tn: 64, tk: 8, wm: 4, wn: 4),
        .tile(tm: 16, tn: 16, tk: 16, wm: 2, wn: 2), .tile(tm: 32, tn: 32, tk: 8, wm: 2, wn: 2),
    ]

    /// The K-split tile variants `myelin tune` measures for the `deep` class, on every device type (a product
    /// with a few tiles of C leaves most of a GPU idle, and most of a CPU's cores too, without them).
    static let splitCandidates: [GemmVariant] = [
        .tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4, slices: 4), .tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4, slices: 8),
        .tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4, slices: 16), .tile(tm: 64, tn: 64, tk: 16, wm: 4, wn: 4, slices: 8),
        .tile(tm: 64, tn: 64, tk: 16, wm: 8, wn: 8, slices: 16), .tile(tm: 16, tn: 16, tk: 16, wm: 2, wn: 2, slices: 16),
    ]
}

/// The classes of products a tuning table keys on. `narrow`: at most 16 columns; `tall`: at least 32 times more
/// rows than columns; `deep`: K at least 32 times the larger of M and N; otherwise the transpose case (`nn`,
/// `tn` = Aᵀ·B, `nt` = A·Bᵀ; both transposed count as `nn`) and the size by FLOPs (small below 2²⁸, medium below
/// 2³², large above).
struct GemmShapeClass: Hashable, Sendable, CustomStringConvertible {
    let name: String
    var description: String { name }

    init(name: String) { self.name = name }

    init(_ s: GemmShape) {
        if s.n <= 16 { name = "narrow"; return }
        if s.m >= 32 * s.n { name = "tall"; return }
        if s.k >= 32 * max(s.m, s.n) { name = "deep"; return }
        let trans = s.transA && !s.transB ? "tn" : (s.transB && !s.transA ? "nt" : "nn")
        let flops = 2.0 * Double(s.m) * Double(s.n) * Double(s.k)
        let size = flops < 0x1p28 ? "small" : (flops < 0x1p32 ? "medium" : "large")
        name = "\(trans)-\(size)"
    }

    /// Every class with the product `myelin tune` measures for it, cheapest first: the MLP's shapes (batch 128,
    /// 784-512-256-10, forward A·Bᵀ, backward A·B and Aᵀ·B), squares of 1024 and 2048, and the tall and deep
    /// products of a convolution lowered to GEMM.
    static let representatives: [(GemmShapeClass, GemmShape)] = [
        (GemmShapeClass(name: "narrow"), shape(128, 256, 10)),
        (GemmShapeClass(name: "nt-small"), shape(128, 784, 512, transB: true)),
        (GemmShapeClass(name: "nn-small"), shape(128, 512, 784)),
        (GemmShapeClass(name: "tn-small"), shape(512, 128, 784, transA: true)),
        (GemmShapeClass(name: "tall"), shape(16384, 288, 64)),
        (GemmShapeClass(name: "deep"), shape(288, 16384, 64, transA: true)),
        (GemmShapeClass(name: "nn-medium"), shape(1024, 1024, 1024)),
        (GemmShapeClass(name: "tn-medium"), shape(1024, 1024, 1024, transA: true)),
        (GemmShapeClass(name: "nt-medium"), shape(1024, 1024, 1024, transB: true)),
        (GemmShapeClass(name: "nn-large"), shape(2048, 2048, 2048)),
        (GemmShapeClass(name: "tn-large"), shape(2048, 2048, 2048, transA: true)),
        (GemmShapeClass(name: "nt-large"), shape(2048, 2048, 2048, transB: true)),
    ]

    /// The packed product M×K·K×N with the given transposes.
    static func shape(_ m: Int, _ k: Int, _ n: Int, transA: Bool = false, transB: Bool = false) -> GemmShape {
        GemmShape(m: m, n: n, k: k, transA: transA, transB: transB)
    }
}

/// The kernel a name in a table or `MYELIN_GEMM_KERNEL` stands for, and back.
extension GemmKernelChoice.Kernel {
    /// `direct`, `tiled`, `skinny:R`, `block:RxC`, `nt:RxC`, `packed:RxC`, `packedr:RxC` or a `GemmVariant` name.
    var name: String {
        switch self {
        case .direct: return "direct"
        case .tiled: return "tiled"
        case .skinny(let rows): return "skinny:\(rows)"
        case .block(let b): return "block:\(b.rows)x\(b.columns)"
        case .nt(let b): return "nt:\(b.rows)x\(b.columns)"
        case .packed(let b, let rowsFirst): return "\(rowsFirst ? "packedr" : "packed"):\(b.rows)x\(b.columns)"
        case .variant(let v): return v.description
        }
    }
}

/// The built-in choice when a device has no tuning table: GPU-style tiles through local memory on GPUs (larger
/// tiles on NVIDIA and AMD; with K split for `deep` products of few tiles), the register-block kernels on CPU OpenCL (PoCL) for small products and the
/// K-blocked packed panels there from 2²⁶ FLOPs on.
enum GemmDefaults {
    /// The kernel for `s` on a device of this type and vendor with these limits.
    static func kernel(for s: GemmShape, info: OpenCLDeviceInfo, limits: LaunchLimits) -> GemmKernelChoice.Kernel {
        if info.isGPU {
            if s.m < 8 || s.n <= 16 { return .direct }
            let vendor = info.vendor.lowercased()
            let big = vendor.contains("nvidia") || vendor.contains("amd") || vendor.contains("advanced micro")
            let preferred: [GemmVariant] = (big ? [.tile(tm: 64, tn: 64, tk: 16, wm: 4, wn: 4)] : [])
                + [.tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4), .tile(tm: 16, tn: 16, tk: 16, wm: 2, wn: 2)]
            guard let v = preferred.first(where: { $0.fits(limits) }) else { return .direct }
            if case .tile(let tm, let tn, let tk, let wm, let wn, _) = v, GemmShapeClass(s).name == "deep" {
                // A few tiles of C and a long K would leave most of the GPU idle: split K so that about 64
                // work-groups run (2 to 16 slices).
                let tiles = (s.m + tm - 1) / tm * ((s.n + tn - 1) / tn) * s.batch
                if tiles < 64 {
                    let slices = min(16, max(2, (64 + tiles - 1) / tiles))
                    return .variant(.tile(tm: tm, tn: tn, tk: tk, wm: wm, wn: wn, slices: slices))
                }
            }
            return .variant(v)
        }
        let cpu = GemmKernelChoice.choose(s)
        // From about the MLP's products (128×784×512) up: packed panels of 6 x 16 (15 of the 16 AVX2 vector
        // registers; the 8 x 16 blocks spill there) with K blocks that keep the panels in the caches (the 8 x 16
        // blocks fall to a third of the cores' speed from n = 2048 on).
        if case .direct = cpu { return cpu }
        if case .skinny = cpu { return cpu }
        if 2.0 * Double(s.m) * Double(s.n) * Double(s.k) >= 0x1p26 { return .variant(cpuLarge) }
        return cpu
    }

    /// The panel variant CPU devices use from 2²⁶ FLOPs on without a table.
    static let cpuLarge = GemmVariant.panel(mr: 6, nv: 2, kc: 256, mb: 8, nb: 4)
}

/// A device's measured choice per shape class, stored as JSON in the program cache folder.
struct GemmTuningTable: Codable, Sendable, Equatable {
    /// The file format; a table of another format is ignored.
    static let format = 1

    /// One class's choice and what it measured.
    struct Entry: Codable, Sendable, Equatable {
        /// The chosen kernel (`GemmKernelChoice.Kernel.name`).
        var kernel: String
        /// Its GFLOP/s on `shape`.
        var gflops: Double
        /// The product measured, `MxKxN` with `:tA` / `:tB`.
        var shape: String
        /// The built-in default's kernel on the same product.
        var defaultKernel: String
        /// The built-in default's GFLOP/s on the same product.
        var defaultGflops: Double
    }

    var format: Int
    var device: String
    var driver: String
    var platform: String
    /// `GemmTuningTable.sourceHash` of the kernels measured; another hash makes the table stale.
    var kernelSourceHash: String
    var created: String
    var budgetSeconds: Double
    var classes: [String: Entry]

    /// The kernel the table picks for `shapeClass`, if it has one that parses.
    func kernel(for shapeClass: GemmShapeClass) -> GemmKernelChoice.Kernel? {
        classes[shapeClass.name].flatMap { GemmKernelChoice.parse($0.kernel) }
    }

    /// A hash of the GEMM kernels' source (common.cl and every gemm*.cl): a table measured with other kernels is
    /// stale.
    static func sourceHash(_ files: [(String, String)]) -> String {
        let text = files.filter { $0.0 == "common.cl" || $0.0.hasPrefix("gemm") }.sorted { $0.0 < $1.0 }
            .map { "\($0.0)\n\($0.1)" }.joined(separator: "\n")
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(format: "%016llx", h)
    }

    /// Where the table of the device `info` lives in `directory`: one file per device name and driver version.
    static func file(for info: OpenCLDeviceInfo, directory: URL) -> URL {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(info.name)\n\(info.driverVersion)\n\(info.platformVersion)".utf8 {
            h = (h ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return directory.appendingPathComponent(String(format: "gemm-tuning-%016llx.json", h))
    }

    /// What is known of the device's table: absent, unreadable, stale (another device, driver or kernel source)
    /// or current.
    enum Lookup: Equatable {
        case absent
        case unreadable(String)
        case stale(String)
        case current(GemmTuningTable)
    }

    /// Reads and checks the table of `info` in `directory` against the kernel source hash `sourceHash`.
    static func lookup(for info: OpenCLDeviceInfo, directory: URL, sourceHash: String) -> Lookup {
        let url = file(for: info, directory: directory)
        guard let data = FileManager.default.contents(atPath: url.path) else { return .absent }
        guard let table = try? JSONDecoder().decode(GemmTuningTable.self, from: data) else {
            return .unreadable("not a Myelin GEMM tuning table")
        }
        if table.format != format { return .stale("format \(table.format), this build reads \(format)") }
        if table.device != info.name || table.driver != info.driverVersion {
            return .stale("measured on \(table.device), driver \(table.driver)")
        }
        if table.kernelSourceHash != sourceHash { return .stale("measured with other GEMM kernels") }
        return .current(table)
    }

    /// Writes the table as JSON (atomically).
    func save(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AtomicFile.write(try encoder.encode(self), to: url)
    }
}

extension GemmKernelChoice {
    /// The kernel a name stands for (`Kernel.name`), nil for an unknown name.
    static func parse(_ text: String) -> Kernel? {
        if text == "direct" { return .direct }
        if text == "tiled" { return .tiled }
        if text == "skinny:4" { return .skinny(rows: 4) }
        if text == "skinny:8" { return .skinny(rows: 8) }
        if let v = GemmVariant(name: text) { return .variant(v) }
        func block(_ prefix: String, in list: [Block]) -> Block? {
            guard text.hasPrefix(prefix) else { return nil }
            let d = text.dropFirst(prefix.count).split(separator: "x").compactMap { Int($0) }
            guard d.count == 2 else { return nil }
            return list.first { $0.rows == d[0] && $0.columns == d[1] }
        }
        if let b = block("packed:", in: Block.all) { return .packed(b, rowsFirst: false) }
        if let b = block("packedr:", in: Block.all) { return .packed(b, rowsFirst: true) }
        if let b = block("nt:", in: Block.ntAll) { return .nt(b) }
        if let b = block("block:", in: Block.all) { return .block(b) }
        return nil
    }
}

// MARK: - public surface

/// Where a device's GEMM tuning stands (`myelin devices`, `myelin tune`).
public struct GemmTuningStatus: Sendable {
    /// The table's file (whether or not it exists).
    public let file: URL
    /// Whether a current table exists for the device, its driver and these kernels.
    public let isTuned: Bool
    /// One line for people: "tuned (12 shape classes, 2026-12-01T00:10:00Z)", "not tuned", "stale (...)".
    public let summary: String

    /// The status of the OpenCL device `info`'s table in the program cache folder the environment names.
    ///
    /// ```swift
    /// for d in OpenCLPlatforms.devices() { print(d.name, GemmTuningStatus.of(d).summary) }
    /// ```
    public static func of(_ info: OpenCLDeviceInfo) -> GemmTuningStatus {
        of(info, environment: ProcessInfo.processInfo.environment)
    }

    /// The status with `MYELIN_CACHE_DIR`, `MYELIN_KERNELS_DIR` and `MYELIN_TUNING` taken from `env`.
    static func of(_ info: OpenCLDeviceInfo, environment env: [String: String]) -> GemmTuningStatus {
        let directory = ProgramCache.directory(environment: env)
        let file = GemmTuningTable.file(for: info, directory: directory)
        let hash = GemmTuningTable.sourceHash((try? KernelLibrary.sourceFiles(environment: env)) ?? KernelLibrary.embedded)
        var summary: String
        var tuned = false
        switch GemmTuningTable.lookup(for: info, directory: directory, sourceHash: hash) {
        case .absent: summary = "not tuned (run `myelin tune`)"
        case .unreadable(let why): summary = "not tuned: the table is unreadable (\(why))"
        case .stale(let why): summary = "not tuned: the table is stale (\(why)); run `myelin tune`"
        case .current(let t):
            tuned = true
            summary = "tuned (\(t.classes.count) shape classes, \(t.created))"
        }
        if GemmTuner.tableDisabled(env) { summary += "; MYELIN_TUNING=off: the built-in defaults decide" }
        return GemmTuningStatus(file: file, isTuned: tuned, summary: summary)
    }
}

/// What `Device.tuneGEMM` measured for one shape class.
public struct GemmTuningResult: Sendable {
    /// The class's name, e.g. `nn-large`.
    public let shapeClass: String
    /// The product measured, e.g. `2048x2048x2048`.
    public let shape: String
    /// The kernel chosen (the default when nothing else was measured).
    public let kernel: String
    /// The chosen kernel's GFLOP/s on `shape`.
    public let gflops: Double
    /// The built-in default's kernel.
    public let defaultKernel: String
    /// The built-in default's GFLOP/s on `shape`.
    public let defaultGflops: Double
    /// How many kernels were measured.
    public let measured: Int
    /// Why other kernels were not measured or were left out (budget, device limits, wrong results).
    public let notes: [String]
}

/// What `Device.tuneGEMM` did: the per-class results and the table written.
public struct GemmTuningReport: Sendable {
    /// The device tuned, e.g. `opencl:0: NVIDIA H200 (NVIDIA CUDA)`.
    public let device: String
    /// One result per shape class measured.
    public let results: [GemmTuningResult]
    /// The table file written.
    public let file: URL
    /// Seconds spent.
    public let seconds: Double
    /// Classes left out because the budget ran out (they keep the built-in default).
    public let skippedClasses: [String]
}

extension Device {
    /// Measures the GEMM kernel variants that fit this OpenCL device on one product per shape class, within
    /// `budget` seconds, and writes the fastest per class to the device's tuning table in the program cache
    /// folder (`MYELIN_CACHE_DIR`, else `~/.cache/myelin`); later processes use it. `progress` gets one line per
    /// measurement. Throws `GemmTuningError.notOpenCL` on the CPU device.
    ///
    /// ```swift
    /// let report = try Device.make(.opencl(index: 0)).tuneGEMM(budget: 60)
    /// for r in report.results { print(r.shapeClass, r.kernel, r.gflops) }
    /// ```
    public func tuneGEMM(budget: Double = 60, progress: ((String) -> Void)? = nil) throws -> GemmTuningReport {
        guard let cl = backend as? OpenCLBackend else {
            throw GemmTuningError.notOpenCL(name)
        }
        return try GemmTuner(backend: cl, budget: budget, progress: progress ?? { _ in }).run()
    }
}

/// Why `Device.tuneGEMM` could not run.
public enum GemmTuningError: Error, CustomStringConvertible {
    /// The device is not an OpenCL device (the CPU device runs OpenBLAS, which tunes itself).
    case notOpenCL(String)

    /// What went wrong, for people.
    public var description: String {
        switch self {
        case .notOpenCL(let name): return "GEMM tuning needs an OpenCL device; \(name) is the CPU device (OpenBLAS)"
        }
    }
}

extension KernelLibrary {
    /// The kernel files the environment names (`MYELIN_KERNELS_DIR`, else the embedded ones).
    static func sourceFiles(environment: [String: String]) throws -> [(String, String)] {
        try sourceFiles(kernelsDirectory: environment["MYELIN_KERNELS_DIR"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The kernel files of `kernelsDirectory`, or the embedded ones when it is nil.
    static func sourceFiles(kernelsDirectory: String?) throws -> [(String, String)] {
        guard let kernelsDirectory else { return embedded }
        return try files(inDirectory: kernelsDirectory)
    }

    /// The program source of the parameterised GEMM kernels: common.cl and gemm_tuned.cl.
    static func gemmVariantSource(kernelsDirectory: String?) throws -> String {
        join(try sourceFiles(kernelsDirectory: kernelsDirectory).filter { $0.0 == "common.cl" || $0.0 == "gemm_tuned.cl" })
    }
}

extension Device {
    /// The name of the GEMM kernel this OpenCL device runs for `shape` (the tuning table's choice for its shape
    /// class, else the built-in default); nil on the CPU device, which calls OpenBLAS.
    ///
    /// ```swift
    /// let gpu = try Device.make(.opencl(index: 0))
    /// print(gpu.gemmKernelName(for: GemmShape(m: 2048, n: 2048, k: 2048)) ?? "OpenBLAS")
    /// ```
    public func gemmKernelName(for shape: GemmShape) -> String? {
        (backend as? OpenCLBackend).map { $0.gemmKernel(for: shape).name }
    }

    /// The GEMM tuning status of this OpenCL device (nil on the CPU device).
    public var gemmTuningStatus: GemmTuningStatus? {
        (backend as? OpenCLBackend).map { GemmTuningStatus.of($0.info) }
    }
}

// MARK: - measuring

/// Measures the candidates per shape class on one device (`Device.tuneGEMM`).
struct GemmTuner {
    let backend: OpenCLBackend
    let budget: Double
    let progress: (String) -> Void
    /// The classes measured and their products (tests measure smaller ones).
    var classes: [(GemmShapeClass, GemmShape)] = GemmShapeClass.representatives

    /// `MYELIN_TUNING=off` (or `0`, `no`, `false`): the runtime ignores tables.
    static func tableDisabled(_ env: [String: String]) -> Bool {
        guard let v = env["MYELIN_TUNING"]?.lowercased() else { return false }
        return ["off", "0", "no", "false"].contains(v)
    }

    /// The kernels measured for `shapeClass` on this device (the default first).
    func candidates(for shapeClass: GemmShapeClass, shape: GemmShape) -> [GemmKernelChoice.Kernel] {
        let b = backend
        var list: [GemmKernelChoice.Kernel] = [GemmDefaults.kernel(for: shape, info: b.info, limits: b.limits)]
        if shapeClass.name == "deep" {
            list += GemmVariant.splitCandidates.filter { $0.fits(b.limits) }.map { .variant($0) }
        }
        if b.info.isGPU {
            if shapeClass.name == "narrow" { list += [.direct, .skinny(rows: 4)] }
            list += GemmVariant.tileCandidates.filter { $0.fits(b.limits) }.map { .variant($0) }
            if shapeClass.name != "narrow" { list.append(.tiled) }
        } else if shapeClass.name == "narrow" {
            list += [.skinny(rows: 4), .skinny(rows: 8), .direct, .variant(.panel(mr: 6, nv: 2, kc: 0, mb: 4, nb: 1))]
        } else {
            list.append(.block(GemmKernelChoice.defaultBlock))
            if shape.transB && !shape.transA { list.append(.nt(GemmKernelChoice.ntBlock)) }
            list += GemmVariant.panelCandidates.map { .variant($0) }
        }
        var seen = Set<String>()
        return list.filter { seen.insert($0.name).inserted }
    }

    func run() throws -> GemmTuningReport {
        let start = Date()
        func elapsed() -> Double { Date().timeIntervalSince(start) }
        let b = backend
        var results: [GemmTuningResult] = []
        var skipped: [String] = []
        var entries: [String: GemmTuningTable.Entry] = [:]
        /// Half the best rate of the class measured last (GFLOP/s): the estimate of what the next one costs.
        var estimate: Double? = nil
        /// The longest first (untimed) run so far, which builds the kernel: what a new kernel may cost on top.
        var firstRunCost = 0.0
        for (shapeClass, shape) in classes {
            let flops = 2.0 * Double(shape.m) * Double(shape.n) * Double(shape.k)
            // Three runs at the estimated rate must fit in what is left.
            if elapsed() + firstRunCost >= budget || estimate.map({ elapsed() + 3 * flops / ($0 * 1e9) > budget }) == true {
                skipped.append(shapeClass.name)
                progress("\(shapeClass): skipped (\(Self.label(shape)) would not fit the budget)")
                continue
            }
            let operands = Operands(backend: b, shape: shape)
            var reference: [Float]? = nil
            var best: (kernel: GemmKernelChoice.Kernel, gflops: Double)? = nil
            var defaultRate = 0.0
            var measured = 0
            var notes: [String] = []
            let list = candidates(for: shapeClass, shape: shape)
            for (index, kernel) in list.enumerated() {
                if index > 0, let rate = best?.gflops, elapsed() + firstRunCost + 3 * flops / (0.5 * rate * 1e9) > budget {
                    notes.append("\(list.count - index) kernels not measured (budget)")
                    break
                }
                if case .variant(let v) = kernel, !b.variantUsable(v) {
                    notes.append("\(v): does not build or fit this device")
                    continue
                }
                // First run (untimed): builds the kernel and checks its result against the default's.
                let firstStart = Date()
                b.gemm(shape, a: operands.a, b: operands.b, c: operands.c, bias: nil, activation: .identity, kernel: kernel)
                b.synchronize()
                if let failure = b.takeFailure() {
                    notes.append("\(kernel.name): \(failure)")
                    continue
                }
                let values = operands.result()
                firstRunCost = max(firstRunCost, Date().timeIntervalSince(firstStart))
                if let reference {
                    if let problem = Self.compare(values, reference) {
                        notes.append("\(kernel.name): wrong results (\(problem)); left out")
                        continue
                    }
                } else {
                    reference = values
                }
                // Timed runs: the best of up to 5, fewer when they are long (at most about a second in all).
                var fastest = Double.infinity, spent = 0.0, runs = 0
                repeat {
                    let t = Date()
                    b.gemm(shape, a: operands.a, b: operands.b, c: operands.c, bias: nil, activation: .identity, kernel: kernel)
                    b.synchronize()
                    let seconds = Date().timeIntervalSince(t)
                    fastest = min(fastest, seconds)
                    spent += seconds
                    runs += 1
                } while runs < 5 && spent < 0.6 && !(runs >= 2 && spent > 0.3)
                if let failure = b.takeFailure() {
                    notes.append("\(kernel.name): \(failure)")
                    continue
                }
                let rate = flops / max(fastest, 1e-9) / 1e9
                measured += 1
                if index == 0 { defaultRate = rate }
                progress(String(format: "%@ %@: %@ %.1f GFLOP/s", shapeClass.name, Self.label(shape), kernel.name, rate))
                if best == nil || rate > best!.gflops { best = (kernel, rate) }
            }
            guard let best else {
                notes.append("nothing ran")
                skipped.append(shapeClass.name)
                continue
            }
            estimate = 0.5 * best.gflops
            let defaultName = list[0].name
            entries[shapeClass.name] = GemmTuningTable.Entry(kernel: best.kernel.name, gflops: best.gflops,
                                                             shape: Self.label(shape), defaultKernel: defaultName,
                                                             defaultGflops: defaultRate)
            results.append(GemmTuningResult(shapeClass: shapeClass.name, shape: Self.label(shape), kernel: best.kernel.name,
                                            gflops: best.gflops, defaultKernel: defaultName, defaultGflops: defaultRate,
                                            measured: measured, notes: notes))
        }
        let files = try KernelLibrary.sourceFiles(kernelsDirectory: b.kernelsDirectory)
        let formatter = ISO8601DateFormatter()
        let table = GemmTuningTable(format: GemmTuningTable.format, device: b.info.name, driver: b.info.driverVersion,
                                    platform: b.info.platformVersion, kernelSourceHash: GemmTuningTable.sourceHash(files),
                                    created: formatter.string(from: Date()), budgetSeconds: budget, classes: entries)
        let file = GemmTuningTable.file(for: b.info, directory: b.cacheDirectory)
        try table.save(to: file)
        b.reloadTuningTable()
        return GemmTuningReport(device: "\(b.name): \(b.details)", results: results, file: file, seconds: elapsed(),
                                skippedClasses: skipped)
    }

    /// `MxKxN` with `:tA` / `:tB`.
    static func label(_ s: GemmShape) -> String {
        "\(s.m)x\(s.k)x\(s.n)" + (s.transA ? ":tA" : "") + (s.transB ? ":tB" : "")
    }

    /// Nil when `values` matches `reference` to within float rounding of a K-long sum, else what differs.
    static func compare(_ values: [Float], _ reference: [Float]) -> String? {
        var scale: Float = 1e-20
        for r in reference { scale = max(scale, abs(r)) }
        for (i, (v, r)) in zip(values, reference).enumerated() where !(abs(v - r) <= 1e-3 * scale) {
            return "element \(i): \(v), expected \(r)"
        }
        return nil
    }

    /// A, B and C of one product, filled with uniform random values on the device.
    struct Operands {
        let backend: OpenCLBackend
        let a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer
        let count: Int

        init(backend: OpenCLBackend, shape s: GemmShape) {
            self.backend = backend
            a = backend.allocate(s.m * s.k)
            b = backend.allocate(s.k * s.n)
            c = backend.allocate(s.m * s.n)
            count = s.m * s.n
            backend.randomUniform(out: a, count: s.m * s.k, seed: 1)
            backend.randomUniform(out: b, count: s.k * s.n, seed: 2)
        }

        func result() -> [Float] {
            var out = [Float](repeating: 0, count: count)
            out.withUnsafeMutableBufferPointer { backend.read(c, offset: 0, count: count, into: $0) }
            return out
        }
    }
}
