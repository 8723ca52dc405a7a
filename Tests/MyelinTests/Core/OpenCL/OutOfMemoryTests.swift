import COpenCL
import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Out of device memory, shown by fault injection (`OpenCLBackend.injectFailures`): one failure frees the pool's
/// cached buffers and the command is tried once more, with the right result; a second failure is a
/// `DeviceError.deviceOutOfMemory` naming the request, the device's memory and the bytes in use, thrown at the
/// next check, and no crash. Both for kernel launches and for buffer creations.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct OutOfMemoryTests {
    static let statuses: [cl_int] = [CL_OUT_OF_RESOURCES, CL_MEM_OBJECT_ALLOCATION_FAILURE]

    /// A fresh device (its own pool and failure record), with buffers of size classes the tests never ask for
    /// cached in its pool.
    func deviceWithCachedBuffers() throws -> (OpenCLBackend, Device) {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        let device = Device(backend: backend)
        for n in [3000, 20000, 70000] { _ = Tensor.zeros([n], on: device) }
        try device.check()
        #expect(backend.pool(holds: (4096 + 20480 + 73728) * 4))
        return (backend, device)
    }

    func expectOutOfMemory(_ body: () throws -> Void, mentioning parts: [String],
                           sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected DeviceError.deviceOutOfMemory", sourceLocation: sourceLocation)
        } catch let error as DeviceError {
            guard case .deviceOutOfMemory = error else {
                Issue.record("expected deviceOutOfMemory, got \(error)", sourceLocation: sourceLocation)
                return
            }
            for part in parts {
                #expect(error.description.contains(part), "'\(error)' does not mention \(part)", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("expected DeviceError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: statuses)
    func oneFailedLaunchFreesThePoolAndIsRetried(status: cl_int) throws {
        let (backend, device) = try deviceWithCachedBuffers()
        let av = testValues(7 * 33, seed: 1), bv = testValues(7 * 33, seed: 2)
        let a = try Tensor(av, shape: [7, 33], on: device), b = try Tensor(bv, shape: [7, 33], on: device)
        backend.injectFailures(1, status: status, at: .enqueue)
        let sum = try a + b
        #expect(backend.poolFlushes == 1)
        #expect(backend.pool(holds: 0))
        try device.check()
        expectClose(try sum.toArray(), zip(av, bv).map { Double($0) + Double($1) }, "a + b after a retried launch")
        // A matrix product through the same path (its first enqueue fails once).
        backend.injectFailures(1, status: status, at: .enqueue)
        let p = try a.matmul(b, transposeB: true)
        try device.check()
        expectClose(try p.toArray(), Reference.gemm(av, bv, m: 7, n: 7, k: 33, transB: true), rtol: 1e-4, atol: 1e-4,
                    "a · bᵀ after a retried launch")
        #expect(backend.poolFlushes == 2)
    }

    @Test(arguments: statuses)
    func twoFailedLaunchesAreAClearError(status: cl_int) throws {
        let (backend, device) = try deviceWithCachedBuffers()
        let a = try Tensor(testValues(7 * 33, seed: 1), shape: [7, 33], on: device)
        backend.injectFailures(2, status: status, at: .enqueue)
        let sum = try a + a
        #expect(backend.poolFlushes == 1)
        let inUse = backend.bytesInUse
        #expect(inUse >= 2 * 7 * 33 * 4)
        expectOutOfMemory({ try device.check() },
                          mentioning: ["opencl:0 is out of memory", "clEnqueueNDRangeKernel", openCLErrorName(status),
                                       "kernel binary_add", "global size [231]",
                                       "the device has \(formatBytes(backend.info.globalMemory))",
                                       "(\(backend.info.globalMemory) bytes)",
                                       "hold \(inUse < 1024 ? formatBytes(inUse) : "\(formatBytes(inUse)) (\(inUse) bytes)")"])
        _ = sum
        // The device works on.
        let twice = try a + a
        try device.check()
        expectClose(try twice.toArray(), testValues(7 * 33, seed: 1).map { 2 * Double($0) }, "a + a after the error")
    }

    @Test(arguments: statuses)
    func oneFailedBufferCreationFreesThePoolAndIsRetried(status: cl_int) throws {
        let (backend, device) = try deviceWithCachedBuffers()
        let allocations = device.stats.allocations
        backend.injectFailures(1, status: status, at: .bufferCreation)
        let values = testValues(5 * 41, seed: 3)
        let t = try Tensor(values, shape: [5, 41], on: device)
        #expect(backend.poolFlushes == 1)
        #expect(backend.pool(holds: 0))
        #expect(device.stats.allocations == allocations + 1)
        try device.check()
        expectClose(try (t * 2).toArray(), values.map { 2 * Double($0) }, "a tensor whose buffer was created on the retry")
    }

    @Test(arguments: statuses)
    func twoFailedBufferCreationsAreAClearError(status: cl_int) throws {
        let (backend, device) = try deviceWithCachedBuffers()
        let keep = Tensor.ones([100], on: device)
        backend.injectFailures(2, status: status, at: .bufferCreation)
        let t = try Tensor(testValues(5 * 41, seed: 3), shape: [5, 41], on: device)
        #expect(backend.poolFlushes == 1)
        let inUse = backend.bytesInUse
        #expect(inUse >= 128 * 4)
        // Reading the buffer that has no memory throws the error (no crash, no NaN handed out as values).
        expectOutOfMemory({ _ = try t.toArray() },
                          mentioning: ["opencl:0 is out of memory", "clCreateBuffer of 1024 bytes (205 Float elements)",
                                       openCLErrorName(status), "the device has \(formatBytes(backend.info.globalMemory))",
                                       "hold \(inUse < 1024 ? formatBytes(inUse) : "\(formatBytes(inUse)) (\(inUse) bytes)")"])
        // It stays a tensor without memory: a later read and the ops on it are skipped and reported, not run
        // through a null buffer.
        #expect(throws: DeviceError.self) { _ = try t.toArray() }
        let u = try t + t
        #expect(throws: DeviceError.self) { _ = try u.sum().item() }
        // Other tensors are unharmed, and new ones work.
        #expect(try keep.sum().item() == 100)
        let fresh = try Tensor(testValues(5 * 41, seed: 4), shape: [5, 41], on: device)
        expectClose(try fresh.toArray(), testValues(5 * 41, seed: 4), "a tensor created after the error")
        try device.check()
    }

    /// A captured step's replayed launches (enqueued directly, with their arguments set once) get the same retry:
    /// one failure mid-replay frees the pool and the step ends as an eager step does; two are the clear error.
    @Test(arguments: statuses)
    func replayedLaunchesAreRetriedToo(status: cl_int) throws {
        let (backend, device) = try deviceWithCachedBuffers()
        func model(_ d: Device) -> Sequential {
            Sequential { Dense(inputSize: 5, outputSize: 7, activation: .relu, seed: 3, device: d); Dense(inputSize: 7, outputSize: 3, seed: 4, device: d) }
        }
        let x = try Tensor(testValues(9 * 5, seed: 5), shape: [9, 5], on: device)
        let y = try Tensor((0..<9).map { Float($0 % 3) }, shape: [9], on: device)
        let captured = model(device), eager = model(device)
        let capturedOptimizer = try SGD(parameters: captured.parameters, learningRate: 0.1)
        let eagerOptimizer = try SGD(parameters: eager.parameters, learningRate: 0.1)
        let step = try captured.captureStep(loss: .softmaxCrossEntropy, optimizer: capturedOptimizer)
        for i in 0..<3 {
            // Mid-replay: after the two copies of the batch into the record's inputs, a prepared launch fails.
            if i == 2 { backend.injectFailures(1, status: status, at: .enqueue, after: 3) }
            try step(x, y)
            eagerOptimizer.zeroGrad()
            try softmaxCrossEntropy(logits: eager(x), labels: y).backward()
            try eagerOptimizer.step()
        }
        try device.check()
        #expect(step.recordCount == 1)
        #expect(backend.poolFlushes == 1)
        for ((name, c), (_, e)) in zip(captured.namedTensors, eager.namedTensors) {
            #expect(try c.toArray() == e.toArray(), "\(name) after a replay with a retried launch")
        }
        backend.injectFailures(2, status: status, at: .enqueue, after: 3)
        // The step reads its loss back, so it throws the failure itself.
        expectOutOfMemory({ try step(x, y); try device.check() }, mentioning: ["out of memory", "replayed launch", openCLErrorName(status)])
    }
}

extension OpenCLBackend {
    /// Whether the pool's cached buffers hold exactly `bytes` (0: the pool is empty) or, for `bytes` > 0, at least.
    func pool(holds bytes: Int) -> Bool {
        let pooled = bytesCreated - bytesInUse
        return bytes == 0 ? pooled == 0 : pooled >= bytes
    }
}
