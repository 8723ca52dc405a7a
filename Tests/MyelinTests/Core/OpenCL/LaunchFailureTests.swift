import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A launch that the device cannot run is not lost: it is recorded with the kernel, its sizes and the device's
/// limits, and thrown at the next `item()` or `Device.check()`.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct LaunchFailureTests {
    func expectCommandFailed(_ body: () throws -> Void, mentioning parts: [String],
                             sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected DeviceError.commandFailed", sourceLocation: sourceLocation)
        } catch let error as DeviceError {
            guard case .commandFailed = error else {
                Issue.record("expected commandFailed, got \(error)", sourceLocation: sourceLocation)
                return
            }
            for part in parts {
                #expect(error.description.contains(part), "'\(error)' does not mention \(part)", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("expected DeviceError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// A local size above the (capped) work-group limit is not enqueued; `item()` throws it once.
    @Test func aWorkGroupAboveTheLimitThrowsAtItem() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0], maxWorkGroupSize: 4)
        let device = Device(backend: backend)
        let x = Tensor.ones([16], on: device)
        let out = Tensor.zeros([1], on: device)
        backend.launch(.reduce, "reduce_rows", global: [8], local: [8],
                       args: [.buffer(x.buffer), .buffer(out.buffer), .int(16), .int(0), .int(1), .int(16), .local(8 * 4)])
        expectCommandFailed({ _ = try out.item() },
                            mentioning: ["opencl:0", "reduce_rows", "global size [8]", "local size [8]",
                                         "CL_DEVICE_MAX_WORK_GROUP_SIZE", "capped to 4", "CL_KERNEL_WORK_GROUP_SIZE",
                                         "CL_DEVICE_MAX_WORK_ITEM_SIZES", "CL_DEVICE_LOCAL_MEM_SIZE"])
        // Reported once; the next read is clean.
        #expect(try out.item() == 0)
        try device.check()
    }

    /// More local memory than the device has is refused the same way, through `Device.check()`.
    @Test func tooMuchLocalMemoryThrowsAtCheck() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        let device = Device(backend: backend)
        let x = Tensor.ones([16], on: device)
        let out = Tensor.zeros([1], on: device)
        let tooMuch = backend.limits.localMemorySize + 4
        backend.launch(.reduce, "reduce_rows", global: [1], local: [1],
                       args: [.buffer(x.buffer), .buffer(out.buffer), .int(16), .int(0), .int(1), .int(16), .local(tooMuch)])
        expectCommandFailed({ try device.check() }, mentioning: ["reduce_rows", "\(tooMuch) bytes of local memory"])
    }

    /// A local size the driver refuses (the 32 x 32 GEMM tile requires 8 x 8 work-groups) becomes the driver's error.
    @Test func anEnqueueTheDriverRefusesThrows() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        let device = Device(backend: backend)
        let a = Tensor.ones([4 * 4], on: device), b = Tensor.ones([4 * 4], on: device), c = Tensor.zeros([4 * 4], on: device)
        let tile = KernelProgram.gemmVariant(.tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4))
        backend.launch(tile, "gemm_tile", global: [1, 1, 1], local: [2, 2, 1],
                       args: backend.gemmArguments(GemmShape(m: 4, n: 4, k: 4), a: a.buffer, b: b.buffer, c: c.buffer,
                                                   bias: nil, activation: .identity))
        expectCommandFailed({ try device.check() }, mentioning: ["clEnqueueNDRangeKernel", "CL_INVALID_WORK_GROUP_SIZE", "gemm_tile"])
    }
}
