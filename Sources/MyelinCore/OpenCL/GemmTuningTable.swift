import Foundation

// The GEMM tuning table: the shape classes it keys on (`GemmShapeClass`), the table itself (`GemmTuningTable`, JSON
// in the program cache folder), and what `myelin devices` and `myelin tune` show of it. The measurement that writes
// it is `GemmTuner` (GemmTuner.swift); the dispatch that reads it is OpenCLBackend+Gemm.swift.

/// The classes of products a tuning table keys on, tested in this order. `deep`: K at least 32 times the larger of
/// M and N (a convolution's weight gradient, whatever its width: a long K decides the kernel); `narrow`: at most
/// 16 columns; `tall`: at least 32 times more rows than columns; `wide`: at least 32 times more columns than rows
/// (a convolution's forward product and input gradient, N = batch·pixels); otherwise the transpose case (`nn`,
/// `tn` = Aᵀ·B, `nt` = A·Bᵀ; both transposed count as `nn`) and the size by FLOPs (small below 2²⁸, medium below
/// 2³², large above).
struct GemmShapeClass: Hashable, Sendable, CustomStringConvertible {
    let name: String
    var description: String { name }

    init(name: String) { self.name = name }

    init(_ s: GemmShape) {
        if Self.isDeep(s) { name = "deep"; return }
        if s.n <= 16 { name = "narrow"; return }
        if s.m >= 32 * s.n { name = "tall"; return }
        if s.n >= 32 * s.m { name = "wide"; return }
        let trans = s.transA && !s.transB ? "tn" : (s.transB && !s.transA ? "nt" : "nn")
        let flops = 2.0 * Double(s.m) * Double(s.n) * Double(s.k)
        let size = flops < 0x1p28 ? "small" : (flops < 0x1p32 ? "medium" : "large")
        name = "\(trans)-\(size)"
    }

    /// Whether `s` is of the `deep` class (K at least 32 times the larger of M and N), without building the name.
    static func isDeep(_ s: GemmShape) -> Bool { s.k >= 32 * max(s.m, s.n) }

    /// Every class with the product `myelin tune` measures for it, cheapest first: the MLP's shapes (batch 128,
    /// 784-512-256-10, forward A·Bᵀ, backward A·B and Aᵀ·B), squares of 1024 and 2048, and the products of a
    /// convolution lowered to GEMM (the CNN's second layer, 32 -> 64 channels, 3x3, 14x14 images, batch 128:
    /// forward W·cols `wide`, weight gradient gy·colsᵀ `deep`; and a tall one).
    static let representatives: [(GemmShapeClass, GemmShape)] = [
        (GemmShapeClass(name: "narrow"), shape(128, 256, 10)),
        (GemmShapeClass(name: "nt-small"), shape(128, 784, 512, transB: true)),
        (GemmShapeClass(name: "nn-small"), shape(128, 512, 784)),
        (GemmShapeClass(name: "tn-small"), shape(512, 128, 784, transA: true)),
        (GemmShapeClass(name: "tall"), shape(16384, 288, 64)),
        (GemmShapeClass(name: "wide"), shape(64, 288, 25088)),
        (GemmShapeClass(name: "deep"), shape(64, 25088, 288, transB: true)),
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
