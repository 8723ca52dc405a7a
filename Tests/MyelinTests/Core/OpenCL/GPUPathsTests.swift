import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `MYELIN_GPU_PATHS=1` (OpenCLBackend.takesGPUPaths): an OpenCL device that is not a GPU (PoCL) takes every choice
/// a GPU takes, so that its launches per step are a GPU's; and the captured step records the implicit-GEMM
/// convolution forward that a GPU runs eagerly.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct GPUPathsTests {
    static func backend(gpuPaths: Bool) throws -> OpenCLBackend {
        var environment = ProcessInfo.processInfo.environment
        environment["MYELIN_GPU_PATHS"] = gpuPaths ? "1" : nil
        environment["MYELIN_MULTI_TENSOR"] = nil
        environment["MYELIN_ROUND_LAUNCHES"] = nil
        return try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0], environment: environment)
    }

    @Test func theSwitchTakesTheGPUsChoices() throws {
        let info = OpenCLPlatforms.devices()[0]
        let gpu = try Self.backend(gpuPaths: true), plain = try Self.backend(gpuPaths: false)
        #expect(gpu.info.isGPU && gpu.roundsLaunches && gpu.groupsOptimizerUpdates)
        #expect(gpu.convChunkElements == ConvChunking.budget(default: 1 << 24))
        #expect(plain.info.isGPU == info.isGPU && plain.roundsLaunches == info.isGPU)
        #expect(OpenCLPlatforms.devices()[0].isGPU == info.isGPU, "the platform list keeps the true type")
        let g = ConvGeometry(batch: 2, channels: 3, height: 6, width: 7, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1,
                             padH: 1, padW: 1)
        #expect(gpu.implicitConvVariant(g, outChannels: 5) != nil, "a GPU's convolution forward is the implicit GEMM")
    }

    /// A convolution forward captured on a device with the GPU's paths is the one implicit-GEMM launch that the
    /// eager forward makes (not the chunked unfold, GEMM and scatter), and its replay gives the eager output.
    @Test func aCapturedConvolutionForwardIsTheImplicitGEMM() throws {
        let device = Device(backend: try Self.backend(gpuPaths: true))
        let x = try Tensor(testValues(2 * 3 * 6 * 7, seed: 71), shape: [2, 3, 6, 7], on: device)
        let w = try Tensor(testValues(5 * 3 * 3 * 3, seed: 72), shape: [5, 3, 3, 3], on: device)
        let b = try Tensor(testValues(5, seed: 73), shape: [5], on: device)
        let before = device.stats.launches
        let eager = try x.conv2d(weight: w, bias: b, stride: (1, 1), padding: (1, 1)).toArray()
        #expect(device.stats.launches - before == 1, "the eager forward is one launch")
        let (y, program) = try StepCapture.record(on: device) { try x.conv2d(weight: w, bias: b, stride: (1, 1), padding: (1, 1)) }
        let recorded = try program.get()
        #expect(recorded.callCount == 1, "the captured forward is one recorded launch")
        #expect(try y.toArray() == eager)
        GradientCheck.overwrite(y, [Float](repeating: 0, count: y.count))
        recorded.replay()
        #expect(try y.toArray() == eager, "the replay writes the eager output again")
    }
}
