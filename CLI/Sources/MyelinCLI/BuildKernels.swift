import ArgumentParser
import Foundation
import Myelin

/// `myelin build-kernels`: builds an OpenCL device's kernel programs (every kernel file, and the GEMM variants the
/// built-in defaults choose) into the program cache (`MYELIN_CACHE_DIR`), several at once, so that later runs load
/// them instead of compiling on first use. Prints one JSON line: programs, how many came from the cache, threads,
/// seconds.
struct BuildKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build-kernels",
        abstract: "Build an OpenCL device's kernel programs into the program cache, on several threads (one JSON line).")

    @OptionGroup var deviceOptions: DeviceOptions
    @Option(help: "Threads building at once (default: $MYELIN_BUILD_THREADS, else one per processor).") var threads: Int?
    @Option(help: "Comma-separated kernel files to build, e.g. conv.cl,reduce.cl (default: all).") var files: String?
    @Option(help: "Comma-separated kernel files to leave out, e.g. gemm.cl (the CPU-style GEMM kernels, which a GPU does not use).")
    var except: String?
    @Flag(help: "Leave out the GEMM variant programs.") var noGemmVariants = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        let device = try deviceOptions.resolve()
        func list(_ text: String) -> [String] { text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        guard let report = device.warmUpKernels(files: files.map(list), excluding: except.map(list) ?? [],
                                                gemmVariants: !noGemmVariants, threads: threads) else {
            throw ValidationError("myelin build-kernels needs an OpenCL device (--device opencl:N); \(device.name) is the CPU")
        }
        let object: [String: Any] = ["device": device.name, "build_seconds": report.seconds, "threads": report.threads,
                                     "programs": report.programs.count, "from_cache": report.fromCache,
                                     "failed": report.failed]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        for failure in report.failed { FileHandle.standardError.write(Data("myelin: \(failure)\n".utf8)) }
        if !report.failed.isEmpty { throw ExitCode(1) }
    }
}
