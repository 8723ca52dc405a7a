import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Sizes are checked against host and device memory before anything is allocated, with errors naming the layer and
/// the bytes; shapes whose element count overflows are errors.
@Suite struct AllocationCheckTests {
    @Test func shapeProductsThatOverflowAreCaught() throws {
        #expect(checkedElementCount([Int.max, 2]) == nil)
        #expect(checkedElementCount([1 << 32, 1 << 32]) == nil)
        #expect(checkedElementCount([3, -1]) == nil)
        #expect(checkedElementCount([7, 33, 1]) == 231)
        #expect(checkedElementCount([]) == 1)
        #expect(checkedFloatBytes(Int.max / 2) == nil)
        #expect(throws: TensorError.self) { try Tensor([1, 2], shape: [Int.max, 2], on: .cpu) }
        #expect(throws: TensorError.self) { try Tensor([1, 2], shape: [1 << 40, 1 << 40], on: .cpu) }
        let x = Tensor.ones([2, 3], on: .cpu)
        #expect(throws: TensorError.self) { try x.reshaped([Int.max, 2, -1]) }
        #expect(throws: TensorError.self) { try x.reshaped([1 << 40, 1 << 40, 6]) }
        #expect(throws: TensorError.self) { try x.broadcast(to: [1 << 40, 1 << 40, 3]) }
        #expect(try x.reshaped([3, -1]).shape == [3, 2])
        do {
            try Device.cpu.checkAllocation(shape: [1 << 40, 1 << 40], for: "the weight")
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("more elements than a 64-bit count can hold"), "\(error)")
        }
    }

    @Test(arguments: TestDevices.all) func tooLargeAllocationsNameTheBytesAndTheDevice(device: Device) {
        let memory = device.memory
        #expect(memory.largestBuffer > 0 && memory.available > 0 && memory.total >= memory.available)
        do {
            try device.checkAllocation(shape: [784, 2_000_000_000], for: "Dense(784 -> 2000000000): the weight")
            Issue.record("6 TB fit on \(device)")
        } catch let error as DeviceError {
            guard case .outOfMemory(_, let bytes, let name, let limit, _) = error else {
                Issue.record("expected outOfMemory, got \(error)")
                return
            }
            #expect(bytes == 784 * 2_000_000_000 * 4)
            #expect(name == device.name)
            #expect(limit <= memory.total)
            #expect(error.description.hasPrefix("Dense(784 -> 2000000000): the weight needs 5.7 TiB, the device \(device.name) has "),
                    "\(error.description)")
        } catch {
            Issue.record("unexpected \(error)")
        }
        // What fits passes.
        #expect(throws: Never.self) { try device.checkAllocation(shape: [512, 784], for: "a weight") }
    }

    @Test func anOpenCLBufferLargerThanTheDriverAllowsIsRefused() throws {
        guard TestDevices.openCLAvailable else { return }
        let device = TestDevices.openCL
        let m = device.memory
        guard m.largestBuffer < m.available else { return }
        do {
            try device.checkAllocation(bytes: m.largestBuffer + 4, for: "a buffer")
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("largest single buffer"), "\(error)")
        }
    }

    @Test(arguments: TestDevices.all) func initializersCheckSizesBeforeDrawing(device: Device) {
        for initializer: Initializer in [.xavierUniform, .zeros, .heNormal] {
            do {
                _ = try initializer.make([784, 2_000_000_000], seed: 1, on: device)
                Issue.record("\(initializer) made a 6 TB tensor")
            } catch {
                #expect("\(error)".contains("Initializer.\(initializer) of shape [784, 2000000000] needs 5.7 TiB"), "\(error)")
            }
        }
    }

    @Test func aDenseNetworkTooLargeForTheDeviceNamesTheLayer() throws {
        let plan = try DenseNetworkMemory(sizes: [784, 2_000_000_000, 10], batchSize: 128, optimizerStateTensors: 2)
        #expect(plan.layers[0].weightShape == [2_000_000_000, 784])
        do {
            try plan.check(on: .cpu)
            Issue.record("no error")
        } catch {
            #expect("\(error)".hasPrefix("Dense(784 -> 2000000000): the weight [2000000000, 784] needs 5.7 TiB, the device cpu has "),
                    "\(error)")
        }
    }

    /// Every weight fits on its own but training as a whole does not: the error gives the total and its parts.
    @Test func theSumOfAllLayersIsChecked() throws {
        let available = Device.cpu.memory.available
        // Two square hidden layers whose weights take half the available memory each.
        let hidden = Int((Double(available) / 8).squareRoot())
        let plan = try DenseNetworkMemory(sizes: [784, hidden, hidden, 10], batchSize: 128, optimizerStateTensors: 2)
        #expect(plan.trainingBytes > available)
        do {
            try plan.check(on: .cpu)
            Issue.record("no error")
        } catch {
            #expect("\(error)".hasPrefix("training 784-\(hidden)-\(hidden)-10 with batches of 128 (parameters "), "\(error)")
            #expect("\(error)".contains("of memory available"), "\(error)")
        }
    }

    @Test func aModelThatFitsPassesAndItsBytesAreExact() throws {
        let plan = try DenseNetworkMemory(sizes: [784, 512, 256, 10], batchSize: 128, optimizerStateTensors: 2)
        try plan.check(on: .cpu)
        let model = Sequential {
            Dense(inputSize: 784, outputSize: 512, activation: .relu, device: .cpu)
            Dense(inputSize: 512, outputSize: 256, activation: .relu, device: .cpu)
            Dense(inputSize: 256, outputSize: 10, device: .cpu)
        }
        #expect(plan.parameterBytes == model.parameterCount * 4)
        #expect(plan.activationBytes == 4 * 128 * (784 + 2 * (512 + 256 + 10)))
        #expect(plan.trainingBytes == 4 * plan.parameterBytes + plan.activationBytes)
        #expect(throws: DeviceError.self) {
            try DenseNetworkMemory(sizes: [784, Int.max / 2, 10], batchSize: 1, optimizerStateTensors: 0)
        }
        #expect(throws: InvalidValueError.self) {
            try DenseNetworkMemory(sizes: [784, 0, 10], batchSize: 1, optimizerStateTensors: 0)
        }
    }

    @Test func hostMemoryIsReadFromMeminfo() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n"
        let parsed = HostMemory.parseMeminfo(text)
        #expect(parsed.total == 24_000_000 * 1024)
        #expect(parsed.available == 20_000_000 * 1024)
        #expect(HostMemory.total > 0)
        #expect(HostMemory.available < HostMemory.total)
    }

    @Test func byteCountsReadWell() {
        #expect(formatBytes(100) == "100 bytes")
        #expect(formatBytes(3 * 1024 + 512) == "3.5 KiB")
        #expect(formatBytes(6_272_000_000_000) == "5.7 TiB")
        #expect(formatBytes(40 << 30) == "40 GiB")
    }
}
