import Foundation

/// The kernel sources: embedded at build time, or read from `MYELIN_KERNELS_DIR` when it is set
/// (for editing `.cl` files without rebuilding). That folder must hold every kernel file Myelin embeds (extra
/// `.cl` files are compiled too); a folder that does not exist, lacks one of them or has one that cannot be read
/// as UTF-8 text is a `DeviceError.kernelsDirectory` when the device is created.
enum KernelLibrary {
    /// The program source the process environment names (see `source(environment:)`).
    static func source() throws -> String { try source(environment: ProcessInfo.processInfo.environment) }

    /// The embedded kernels, or every `.cl` file of `MYELIN_KERNELS_DIR` in `environment` when it is set.
    static func source(environment: [String: String]) throws -> String {
        guard let dir = environment["MYELIN_KERNELS_DIR"], !dir.isEmpty else { return join(embedded) }
        return join(try files(inDirectory: dir))
    }

    /// The `.cl` files of `directory`, checked against the embedded list.
    static func files(inDirectory directory: String) throws -> [(String, String)] {
        func fail(_ problem: String) -> DeviceError { .kernelsDirectory(directory, problem: problem) }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder) else {
            throw fail("the folder does not exist")
        }
        guard isFolder.boolValue else { throw fail("is a file, not a folder of .cl files") }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".cl") }.sorted()
        } catch {
            throw fail("the folder cannot be listed (\(ProgramCache.reason(error)))")
        }
        let missing = embedded.map(\.0).filter { !names.contains($0) }
        guard missing.isEmpty else {
            throw fail("missing \(missing.joined(separator: ", ")) (the folder must hold every kernel file: "
                       + "\(embedded.map(\.0).joined(separator: ", ")))")
        }
        var files: [(String, String)] = []
        var unreadable: [String] = []
        for name in names {
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else {
                unreadable.append("\(name) (cannot be read)")
                continue
            }
            guard let text = String(data: data, encoding: .utf8) else {
                unreadable.append("\(name) (not UTF-8 text)")
                continue
            }
            files.append((name, text))
        }
        guard unreadable.isEmpty else { throw fail("unreadable kernel files: \(unreadable.joined(separator: ", "))") }
        return files
    }

    /// The `.cl` files compiled into the binary by SwiftPM (`.embedInCode` resources of MyelinCore).
    static var embedded: [(String, String)] {
        [("attention.cl", PackageResources.attention_cl), ("augment.cl", PackageResources.augment_cl), ("common.cl", PackageResources.common_cl), ("conv.cl", PackageResources.conv_cl),
         ("elementwise.cl", PackageResources.elementwise_cl), ("gemm.cl", PackageResources.gemm_cl),
         ("gemm_direct.cl", PackageResources.gemm_direct_cl),
         ("gemm_tuned.cl", PackageResources.gemm_tuned_cl),
         ("gemm_tuned_conv.cl", PackageResources.gemm_tuned_conv_cl), ("layout.cl", PackageResources.layout_cl),
         ("normalization.cl", PackageResources.normalization_cl), ("optimizers.cl", PackageResources.optimizers_cl),
         ("reduce.cl", PackageResources.reduce_cl)].map { ($0.0, String(decoding: $0.1, as: UTF8.self)) }
    }

    /// The files a kernel file names on its `// requires: a.cl, b.cl` lines (it uses their helpers or macros).
    static func requirements(of text: String) -> [String] {
        text.split(separator: "\n").compactMap { line -> [String]? in
            guard line.hasPrefix("// requires:") else { return nil }
            return line.dropFirst("// requires:".count).split(separator: ",")
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }.flatMap { $0 }
    }

    /// common.cl first (shared helpers), then the rest in name order.
    static func join(_ files: [(String, String)]) -> String {
        let ordered = files.sorted { a, b in
            if a.0 == "common.cl" { return b.0 != "common.cl" }
            if b.0 == "common.cl" { return false }
            return a.0 < b.0
        }
        return ordered.map { "// ---- \($0.0)\n\($0.1)" }.joined(separator: "\n")
    }

    /// The kernel files the environment names (`MYELIN_KERNELS_DIR`, else the embedded ones).
    static func sourceFiles(environment: [String: String]) throws -> [(String, String)] {
        try sourceFiles(kernelsDirectory: environment["MYELIN_KERNELS_DIR"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The kernel files of `kernelsDirectory`, or the embedded ones when it is nil.
    static func sourceFiles(kernelsDirectory: String?) throws -> [(String, String)] {
        guard let kernelsDirectory else { return embedded }
        return try files(inDirectory: kernelsDirectory)
    }

    /// The files of the parameterised GEMM programs: gemm_tuned.cl and the implicit-GEMM convolution kernels that
    /// build on its GPU-grade tiles (gemm_tuned_conv.cl), with common.cl.
    static let gemmVariantFiles: Set<String> = ["common.cl", "gemm_tuned.cl", "gemm_tuned_conv.cl"]

    /// The program source of the parameterised GEMM kernels: `gemmVariantFiles`, common.cl first.
    static func gemmVariantSource(kernelsDirectory: String?) throws -> String {
        join(try sourceFiles(kernelsDirectory: kernelsDirectory).filter { gemmVariantFiles.contains($0.0) })
    }
}

/// One program of the kernel library, as launches name it: a kernel file's (common.cl, the files it names on a
/// `// requires:` line, then the file), or a parameterised GEMM variant's (common.cl and gemm_tuned.cl, built
/// with the variant's defines). `launch(.conv, "conv_unfold_rows", ...)` builds the program on first use.
struct KernelProgram: Hashable, Sendable, CustomStringConvertible {
    /// The kernel file, e.g. `conv.cl`.
    let file: String
    /// The GEMM variant whose defines build the program (for gemm_tuned.cl), without its K-split count (the split
    /// kernels of a tile size share one program).
    let variant: GemmVariant?

    /// The program of a kernel file (tests name files of their own).
    init(file: String) { self.file = file; variant = nil }

    private init(variant: GemmVariant) { file = "gemm_tuned.cl"; self.variant = variant.withoutSplit }

    static let attention = KernelProgram(file: "attention.cl")
    static let augment = KernelProgram(file: "augment.cl")
    static let conv = KernelProgram(file: "conv.cl")
    static let elementwise = KernelProgram(file: "elementwise.cl")
    static let gemm = KernelProgram(file: "gemm.cl")
    static let gemmDirect = KernelProgram(file: "gemm_direct.cl")
    static let layout = KernelProgram(file: "layout.cl")
    static let normalization = KernelProgram(file: "normalization.cl")
    static let optimizers = KernelProgram(file: "optimizers.cl")
    static let reduce = KernelProgram(file: "reduce.cl")
    /// The program of a parameterised GEMM kernel (Kernels/gemm_tuned.cl with `variant.defines`).
    static func gemmVariant(_ variant: GemmVariant) -> KernelProgram { KernelProgram(variant: variant) }

    var description: String { variant.map { "\(file) \($0.defines)" } ?? file }
}

/// A kernel by its program and name: the key of the kernels a device created, their limits and launch sizes.
struct KernelReference: Hashable, Sendable, CustomStringConvertible {
    let program: KernelProgram
    let name: String
    init(_ program: KernelProgram, _ name: String) { self.program = program; self.name = name }
    var description: String { "\(name) (\(program))" }
    /// The name in kernel profiles: the kernel's, with a GEMM variant's name after it.
    var profileLabel: String { program.variant.map { "\(name) [\($0)]" } ?? name }
}
