import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// An allocation refused inside an API that cannot throw (`zeros`, `uniform`, a unary op, a layer's initializer) is
/// never a stop of the program (issue 28, item 3): the refusal is the device's failure, the tensor has no memory,
/// the ops that use it are skipped, and the error, naming the request, is thrown at the next `toArray()`, `item()`
/// or `Device.check()`, as CUDA reports an asynchronous error at the next synchronization. Each CPU test runs on a
/// CPU backend of its own, whose host allocations it makes the system refuse.
@Suite struct UnallocatedTensorTests {
    /// A CPU device of its own whose allocations of 256 KiB or more the "system" refuses.
    private func refusingDevice() -> (Device, CPUBackend) {
        let backend = CPUBackend.makePrivate()
        backend.limitMemory(refused: 256 << 10)
        return (Device(backend: backend), backend)
    }

    @Test func aRefusedCreatorIsThrownAtTheNextReadAndTheOpsThatUseItAreSkipped() throws {
        let (device, backend) = refusingDevice()
        defer { backend.limitMemory() }
        let z = Tensor.zeros([100_000], on: device)            // 391 KiB: refused, no stop
        let total = z.sum()                                    // one value: allocated; the sum is skipped
        let read = errorText { _ = try total.toArray() }
        #expect(read.hasPrefix("cpu: a buffer of 100000 Float elements needs 391 KiB, the device cpu has ")
                    && read.contains("the system refused the allocation"), "\(read)")
        // The failure was taken by that read; the tensor without memory is still one, and says so when used.
        let again = errorText { _ = try z.sum().item() }
        #expect(again == "cpu: reduce skipped: a buffer it uses has no memory (its allocation failed: out of memory)",
                "\(again)")
        let direct = errorText { _ = try z.toArray() }
        #expect(direct.hasPrefix("cpu: read skipped: a buffer it uses has no memory"), "\(direct)")
        // Nothing is left pending, and the device works on for what fits.
        try device.check()
        #expect(try (Tensor([1, 2, 3], on: device) * 2).toArray() == [2, 4, 6])
    }

    @Test func randomCreatorsUnaryOpsAndMovesBetweenDevicesDoNotStop() throws {
        let (device, backend) = refusingDevice()
        defer { backend.limitMemory() }
        for make in [{ Tensor.uniform([100_000], seed: 1, on: device) }, { Tensor.normal([100_000], seed: 1, on: device) },
                     { Tensor.ones([100_000], on: .cpu).to(device) }, { Tensor.full([100_000], 2, on: device) }] {
            let t = make()
            let text = errorText { try device.check() }
            #expect(text.contains("100000 Float elements needs 391 KiB"), "\(text)")
            #expect(t.shape == [100_000])
        }
        let small = try Tensor(shape: [50_000], repeating: 1, on: device)   // 195 KiB: allowed
        let big = Tensor.zeros([50_000, 2], on: device)                      // refused
        let exp = small.exp(), moved = big.to(.cpu)                          // exp fits; the move reads NaN, no stop
        let text = errorText { try device.check() }
        #expect(text.contains("100000 Float elements"), "\(text)")
        #expect(try exp.toArray().allSatisfy { abs($0 - Float(M_E)) < 1e-5 })
        #expect(try moved.shape == [50_000, 2] && (try moved.toArray()).allSatisfy(\.isNaN), "a tensor without memory reads as NaN")
    }

    @Test func aLayerTooLargeForTheDeviceIsAnErrorAtTheFirstStepNamingTheLayer() throws {
        let (device, backend) = refusingDevice()
        defer { backend.limitMemory() }
        let model = Sequential {
            Dense(inputSize: 4, outputSize: 1000, activation: .relu, seed: 1, device: device)
            Dense(inputSize: 1000, outputSize: 200, seed: 2, device: device)         // 781 KiB weight: refused
        }
        let made = errorText { try device.check() }
        #expect(made.hasPrefix("Dense(1000 -> 200): Tensor(_:shape:): a result of shape [200, 1000] needs 781 KiB"), "\(made)")
        // Training it is an error at the first check, not a crash nor a result made from a tensor without memory.
        let data = try Dataset(features: Tensor.uniform([16, 4], seed: 3, on: device),
                               targets: Tensor(labels: Array(repeating: 1, count: 16), classes: 200, on: device))
        let adam = try Adam(parameters: model.parameters, learningRate: 1e-3)
        let fit = errorText {
            _ = try model.fit(data, epochs: 1, batchSize: 8, loss: .softmaxCrossEntropy, optimizer: adam, verbosity: .silent)
        }
        #expect(fit.contains("skipped: a buffer it uses has no memory") || fit.contains("needs"), "\(fit)")
    }

    /// On every kind of device, a request larger than the device (256 GiB) is recorded, not a stop (the OpenCL
    /// device checked it with a stop before; a driver's refusal was recorded already). Devices of their own: a
    /// failure recorded on a shared device would be thrown to whichever test reads it next.
    @Test func aRequestLargerThanTheDeviceIsRecorded() throws {
        var devices = [Device(backend: CPUBackend.makePrivate())]
        if TestDevices.openCLAvailable {
            devices.append(Device(backend: try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])))
        }
        for device in devices {
            let huge = Tensor.zeros([1 << 36], on: device)
            let text = errorText { _ = try huge.sum().item() }
            #expect(text.hasPrefix("\(device.name): a buffer of 68719476736 Float elements needs 256 GiB"), "\(text)")
            try device.check()
        }
    }
}
