import ArgumentParser
import Foundation
import Myelin

struct GemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "GFLOP/s of SGEMM: CPU device, OpenCL device, OpenBLAS direct, CLBlast.")

    @Option(help: "Timed runs per size (median reported).") var runs = 7
    @Option(help: "OpenCL device index.") var opencl = 0
    @Option(help: "Square sizes, comma separated.") var sizes = "128,256,512,1024"

    func run() throws {
        print("gemm bench to be filled in")
    }
}
