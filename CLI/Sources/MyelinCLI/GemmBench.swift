import ArgumentParser
import COpenBLAS
import Foundation
import Myelin

/// `myelin bench gemm`: SGEMM GFLOP/s of Myelin's CPU device, Myelin's OpenCL device, OpenBLAS called
/// directly, and CLBlast on the same OpenCL queue. Each figure is the median of `--runs` timed runs after warm-up.
struct GemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "GFLOP/s of SGEMM: CPU device, OpenCL device, OpenBLAS direct, CLBlast.")

    @Option(parsing: .unconditional, help: "Timed runs per size (median reported).") var runs = 7
    @Option(parsing: .unconditional, help: "OpenCL device index.") var opencl = 0
    @Option(help: "Square sizes, comma separated.") var sizes = "128,256,512,1024"
    @Option(help: "Extra shapes MxKxN[:tA|:tB|:tAB], comma separated (default: the products of a 784-512-256-10 MLP at batch 128, weights [out, in]: forward, input gradients, weight gradients).")
    var shapes = "128x784x512:tB,128x512x256:tB,128x256x10:tB,128x256x512,128x10x256,512x128x784:tA,256x128x512:tA,10x128x256:tA"
    @Flag(help: "Print one JSON object per shape (one per line) instead of the table.") var json = false
    @Flag(help: "Report the fastest run instead of the median (for tuning on a busy machine).") var best = false
    @Flag(help: "Time only Myelin's OpenCL device (for tuning kernels; the other columns print - in the table, null in JSON).") var openclOnly = false
    @Flag(name: .customLong("no-clblast"), help: "Leave CLBlast out (it is slow on a CPU OpenCL device at large sizes).")
    var noCLBlast = false

    func validate() throws {
        try checkingValues {
            try ValueCheck.atLeast(1, runs, name: "--runs")
            try ValueCheck.atLeast(0, opencl, name: "--opencl")
        }
        _ = try shapeList()
    }

    /// The square `--sizes` then the `--shapes`, each checked.
    func shapeList() throws -> [BenchShape] {
        var list = try checkingValues { try ValueCheck.layerSizes(sizes, name: "--sizes") }
            .map { BenchShape(m: $0, k: $0, n: $0, transA: false, transB: false) }
        for s in shapes.split(separator: ",") where !s.isEmpty { list.append(try BenchShape(parsing: String(s))) }
        return list
    }

    func run() throws {
        let list = try shapeList()

        let gpu = try Device.make(.opencl(index: opencl))
        for s in list {
            // A, B and C on each device, and the host's copies of A and B.
            for device in [gpu, Device.cpu] {
                for (name, shape) in [("A", [s.m, s.k]), ("B", [s.k, s.n]), ("C", [s.m, s.n])] {
                    try device.checkAllocation(shape: shape, for: "\(s.label): \(name) \(shape)")
                }
            }
        }
        let clblast = noCLBlast ? nil : CLBlast.load()
        if !json {
            print("SGEMM GFLOP/s, median of \(runs) runs after warm-up (C = op(A)·op(B), row-major)")
            print("cpu: \(Device.cpu.details)")
            print("\(gpu.name): \(gpu.details)")
            print("CLBlast: \(noCLBlast ? "left out (--no-clblast)" : clblast == nil ? "not installed (libclblast.so.1 could not be loaded)" : "libclblast.so.1")")
            print("GEMM tuning of \(gpu.name): \(gpu.gemmTuningStatus?.summary ?? "-")")
            print("")
            let header = ["M×K×N", "Myelin CPU", "OpenBLAS", "CPU/BLAS", "Myelin OpenCL", "CLBlast", "OpenCL/CLBlast",
                          "OpenCL/BLAS", "OpenCL kernel"]
            print(Self.row(header))
            print(Self.row(header.map { String(repeating: "-", count: $0.count) }))
        }
        for shape in list {
            let r = measure(shape, gpu: gpu, clblast: clblast)
            if json {
                print(r.json(device: gpu, runs: runs))
            } else {
                print(Self.row([shape.label, r.myelinCPU.map(fmt) ?? "-", r.openBLAS.map(fmt) ?? "-",
                                r.cpuOverOpenBLAS.map(ratioText) ?? "-",
                                fmt(r.myelinOpenCL), r.clBlast.map(fmt) ?? (openclOnly ? "-" : "not installed"),
                                r.openCLOverCLBlast.map(ratioText) ?? "-", r.openCLOverOpenBLAS.map(ratioText) ?? "-",
                                gpu.gemmKernelName(for: shape.gemmShape) ?? "-"]))
            }
            fflush(nil)
        }
    }

    static func row(_ cells: [String]) -> String {
        let widths = [18, 11, 9, 9, 14, 14, 15, 12, 32]
        return zip(cells, widths).map { c, w in
            c.count >= w ? c : String(repeating: " ", count: w - c.count) + c
        }.joined(separator: " ")
    }

    func fmt(_ v: Double) -> String { String(format: "%.1f", v) }
    func ratioText(_ r: Double) -> String { String(format: "%.2f×", r) }

    func measure(_ s: BenchShape, gpu: Device, clblast: CLBlast?) -> BenchResult {
        let flops = 2.0 * Double(s.m) * Double(s.n) * Double(s.k)
        let aShape = s.transA ? [s.k, s.m] : [s.m, s.k]
        let bShape = s.transB ? [s.n, s.k] : [s.k, s.n]
        let aValues = (0..<(s.m * s.k)).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 }
        let bValues = (0..<(s.k * s.n)).map { Float(($0 * 104_729) % 997) / 997 - 0.5 }
        let warm = max(2, min(runs, 3))

        func gflops(_ body: () -> Void) -> Double {
            for _ in 0..<warm { body() }
            var times: [Double] = []
            for _ in 0..<runs {
                let t0 = DispatchTime.now().uptimeNanoseconds
                body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
            }
            times.sort()
            return flops / (best ? times[0] : times[times.count / 2]) / 1e9
        }

        func myelin(_ device: Device) -> Double {
            let a = try! Tensor(aValues, shape: aShape, on: device)
            let b = try! Tensor(bValues, shape: bShape, on: device)
            device.synchronize()  // uploads are not timed
            return gflops {
                _ = try! a.matmul(b, transposeA: s.transA, transposeB: s.transB)
                device.synchronize()
            }
        }

        let cl = myelin(gpu)
        if openclOnly { return BenchResult(shape: s, myelinCPU: nil, myelinOpenCL: cl, openBLAS: nil, clBlast: nil) }
        let cpu = myelin(.cpu)

        var c = [Float](repeating: 0, count: s.m * s.n)
        let blas = gflops {
            cblas_sgemm(CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans,
                        Int32(s.m), Int32(s.n), Int32(s.k), 1, aValues, Int32(aShape[1]), bValues, Int32(bShape[1]),
                        0, &c, Int32(s.n))
        }

        var clb: Double? = nil
        if let clblast, let handles = gpu.openCLHandles {
            let a = try! Tensor(aValues, shape: aShape, on: gpu)
            let b = try! Tensor(bValues, shape: bShape, on: gpu)
            let out = Tensor.zeros([s.m, s.n], on: gpu)
            gpu.synchronize()
            var failed: Int32 = 0
            let value = gflops {
                let status = clblast.sgemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k,
                                           a: a.openCLMemory!, lda: aShape[1], b: b.openCLMemory!, ldb: bShape[1],
                                           c: out.openCLMemory!, ldc: s.n, queue: handles.queue)
                if status != 0 { failed = status }
                gpu.synchronize()
            }
            if failed == 0 { clb = value } else {
                FileHandle.standardError.write("CLBlastSgemm failed with status \(failed) for \(s.label)\n".data(using: .utf8)!)
            }
        }
        return BenchResult(shape: s, myelinCPU: cpu, myelinOpenCL: cl, openBLAS: blas, clBlast: clb)
    }
}

/// One benchmarked product: C[M, N] = op(A)·op(B) with inner dimension K.
struct BenchShape {
    var m, k, n: Int
    var transA, transB: Bool

    init(m: Int, k: Int, n: Int, transA: Bool, transB: Bool) {
        self.m = m; self.k = k; self.n = n; self.transA = transA; self.transB = transB
    }

    /// `MxKxN`, optionally followed by `:tA`, `:tB` or `:tAB`.
    init(parsing text: String) throws {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: ":")
        let dims = parts.first.map { $0.split(separator: "x").compactMap { Int($0) } } ?? []
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }), parts.count <= 2 else {
            throw ValidationError("--shapes: '\(text)' is not MxKxN[:tA|:tB|:tAB]")
        }
        let flag = parts.count == 2 ? String(parts[1]) : ""
        guard ["", "tA", "tB", "tAB"].contains(flag) else {
            throw ValidationError("--shapes: '\(text)' has transpose flag '\(flag)', expected tA, tB or tAB")
        }
        self.init(m: dims[0], k: dims[1], n: dims[2], transA: flag.contains("A"), transB: flag.contains("B"))
    }

    /// The packed product this shape stands for.
    var gemmShape: GemmShape { GemmShape(m: m, n: n, k: k, transA: transA, transB: transB) }

    var label: String {
        let t = transA && transB ? " tAB" : transA ? " tA" : transB ? " tB" : ""
        return "\(m)×\(k)×\(n)\(t)"
    }
}

/// One shape's GFLOP/s; nil where a column was not measured (`--opencl-only`, no CLBlast).
struct BenchResult {
    let shape: BenchShape
    let myelinCPU: Double?, myelinOpenCL: Double, openBLAS: Double?
    let clBlast: Double?

    /// a / b where both were measured and the quotient is a number (never NaN or infinite, which JSON lacks).
    static func ratio(_ a: Double?, _ b: Double?) -> Double? {
        guard let a, let b else { return nil }
        let r = a / b
        return r.isFinite ? r : nil
    }
    var cpuOverOpenBLAS: Double? { Self.ratio(myelinCPU, openBLAS) }
    var openCLOverCLBlast: Double? { Self.ratio(myelinOpenCL, clBlast) }
    var openCLOverOpenBLAS: Double? { Self.ratio(myelinOpenCL, openBLAS) }

    /// One JSON object; a figure not measured, or not a finite number, is null.
    func json(device: Device, runs: Int) -> String {
        func num(_ v: Double?) -> String { v.flatMap { $0.isFinite ? String(format: "%.3f", $0) : nil } ?? "null" }
        let fields: [(String, String)] = [
            ("m", "\(shape.m)"), ("k", "\(shape.k)"), ("n", "\(shape.n)"),
            ("transA", "\(shape.transA)"), ("transB", "\(shape.transB)"), ("runs", "\(runs)"),
            ("opencl_device", "\"\(device.details.replacingOccurrences(of: "\"", with: "'"))\""),
            ("myelin_cpu_gflops", num(myelinCPU)), ("openblas_gflops", num(openBLAS)),
            ("myelin_opencl_gflops", num(myelinOpenCL)), ("clblast_gflops", num(clBlast)),
            ("cpu_over_openblas", num(cpuOverOpenBLAS)),
            ("opencl_over_clblast", num(openCLOverCLBlast)),
            ("opencl_over_openblas", num(openCLOverOpenBLAS)),
            ("opencl_kernel", device.gemmKernelName(for: shape.gemmShape).map { "\"\($0)\"" } ?? "null"),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }
}

/// CLBlast's `CLBlastSgemm`, loaded at run time with dlopen so that Myelin does not link CLBlast.
struct CLBlast {
    typealias SgemmFunction = @convention(c) (
        Int32, Int32, Int32, Int, Int, Int, Float,
        OpaquePointer?, Int, Int, OpaquePointer?, Int, Int, Float, OpaquePointer?, Int, Int,
        UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<OpaquePointer?>?) -> Int32
    let sgemmFunction: SgemmFunction

    /// nil when libclblast.so.1 (Debian libclblast1 / libclblast-dev) cannot be loaded.
    static func load() -> CLBlast? {
        for name in ["libclblast.so.1", "libclblast.so"] {
            if let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL), let sym = dlsym(handle, "CLBlastSgemm") {
                return CLBlast(sgemmFunction: unsafeBitCast(sym, to: SgemmFunction.self))
            }
        }
        return nil
    }

    /// Row-major SGEMM C = op(A)·op(B) on `queue`; returns CLBlast's status code (0 is success).
    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: OpaquePointer, lda: Int,
               b: OpaquePointer, ldb: Int, c: OpaquePointer, ldc: Int, queue: OpaquePointer) -> Int32 {
        let rowMajor: Int32 = 101, no: Int32 = 111, yes: Int32 = 112
        var q: OpaquePointer? = queue
        return sgemmFunction(rowMajor, transA ? yes : no, transB ? yes : no, m, n, k, 1,
                             a, 0, lda, b, 0, ldb, 0, c, 0, ldc, &q, nil)
    }
}
