import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Choosing devices, agreement between devices, seeded randomness, and the transfer/allocation counters.
@Suite struct DeviceTests {
    // MARK: specs and choice

    @Test func parsesDeviceSpecs() throws {
        let good: [(String, DeviceSpec)] = [
            ("auto", .auto), ("", .auto), ("  AUTO ", .auto), ("cpu", .cpu), (" CPU", .cpu),
            ("opencl", .opencl(index: 0)), ("opencl:0", .opencl(index: 0)), (" OpenCL ", .opencl(index: 0)),
            ("OpenCL:12", .opencl(index: 12)), ("opencl:3", .opencl(index: 3)),
        ]
        for (text, spec) in good {
            #expect(try DeviceSpec(parsing: text) == spec, "'\(text)'")
        }
        // One string form per spec: `opencl:N` (what a device's name is too).
        for spec in [DeviceSpec.auto, .cpu, .opencl(index: 0), .opencl(index: 4)] {
            #expect(try DeviceSpec(parsing: spec.description) == spec)
        }
        #expect(DeviceSpec.opencl(index: 0).description == "opencl:0")
        // `cl` is not a second spelling of `opencl`.
        for bad in ["gpu", "opencl:", "opencl:-1", "opencl:x", "cpu:0", "opencl:1:2", "cuda", ":1", "cl", "cl:0"] {
            #expect(throws: DeviceError.badSpec(bad), "'\(bad)'") { try DeviceSpec(parsing: bad) }
            expectError(containing: ["'\(bad)'", "auto, cpu, opencl or opencl:N"]) { _ = try DeviceSpec(parsing: bad) }
        }
    }

    @Test func readsTheEnvironmentVariable() throws {
        #expect(try DeviceSpec.fromEnvironment([:]) == .auto)
        #expect(try DeviceSpec.fromEnvironment(["MYELIN_DEVICE": ""]) == .auto)
        #expect(try DeviceSpec.fromEnvironment(["OTHER": "cpu"]) == .auto)
        #expect(try DeviceSpec.fromEnvironment(["MYELIN_DEVICE": "cpu"]) == .cpu)
        #expect(try DeviceSpec.fromEnvironment(["MYELIN_DEVICE": "opencl:2"]) == .opencl(index: 2))
        expectError(containing: ["'tpu'"]) { _ = try DeviceSpec.fromEnvironment(["MYELIN_DEVICE": "tpu"]) }
    }

    @Test func autoPicksTheFirstGPUElseTheCPU() {
        #expect(Device.autoChoice(isGPU: []) == .cpu)
        #expect(Device.autoChoice(isGPU: [false]) == .cpu)
        #expect(Device.autoChoice(isGPU: [false, false]) == .cpu)
        #expect(Device.autoChoice(isGPU: [true]) == .opencl(index: 0))
        #expect(Device.autoChoice(isGPU: [false, true, true]) == .opencl(index: 1))
    }

    @Test func autoOnThisMachine() throws {
        let device = try Device.make(.auto)
        if let gpu = OpenCLPlatforms.devices().firstIndex(where: { $0.isGPU }) {
            #expect(device.name == "opencl:\(gpu)")
        } else {
            // PoCL (a CPU OpenCL device) does not count as a GPU.
            #expect(device === Device.cpu)
        }
        #expect(try Device.make(.cpu) === Device.cpu)
        #expect(Device.cpu.name == "cpu" && !Device.cpu.isOpenCL && !Device.cpu.details.isEmpty)
    }

    @Test func openCLDevicesAreNumberedAndShared() throws {
        guard TestDevices.openCLAvailable else { return }
        let d = try Device.make(.opencl(index: 0))
        #expect(d.name == "opencl:0" && d.isOpenCL && d.description == "opencl:0")
        #expect(try Device.make(.opencl(index: 0)) === d)
        #expect(try Device.make(DeviceSpec(parsing: "opencl")) === d)
        #expect(try Device.make(DeviceSpec(parsing: d.name)) === d)
        #expect(d.details.contains(OpenCLPlatforms.devices()[0].name))
    }

    @Test func missingOpenCLDeviceListsTheAvailableOnes() {
        let available = Device.availableNames()
        #expect(available.first == "cpu")
        #expect(available.count == 1 + OpenCLPlatforms.devices().count)
        expectError(containing: ["99"] + available) { _ = try Device.make(.opencl(index: 99)) }
        expectError(containing: ["-1", "cpu"]) { _ = try Device.make(.opencl(index: -1)) }
        if TestDevices.openCLAvailable {
            #expect(available[1].hasPrefix("opencl:0 ("))
        }
    }

    // MARK: agreement between devices

    /// The same chain of ops on the CPU and on OpenCL gives the same numbers.
    @Test func cpuAndOpenCLAgree() throws {
        guard TestDevices.openCLAvailable else { return }
        func run(_ device: Device) throws -> [[Float]] {
            let x = Tensor.uniform([33, 17], low: -1, high: 1, seed: 1, on: device)
            let w = Tensor.normal([17, 9], std: 0.3, seed: 2, on: device)
            let b = Tensor.uniform([9], seed: 3, on: device)
            let h = try x.dense(weight: w, bias: b, activation: .geluTanh)
            let p = try (h * h.sigmoid() - 0.1).logSoftmax()
            let t = try h.transposed().matmul(p)
            let r = try t.max(axis: 0) + t.mean(axis: 1, keepDims: true)
            let labels = try Tensor((0..<33).map { Float($0 % 9) }, shape: [33], on: device)
            return try [h.toArray(), p.toArray(), t.toArray(), r.toArray(), p.argmax().toArray(),
                        labels.oneHot(classes: 9).toArray(), x.gather(rows: labels).sum(axis: 1).toArray()]
        }
        let cpu = try run(.cpu), cl = try run(TestDevices.openCL)
        for (i, (a, b)) in zip(cpu, cl).enumerated() {
            expectClose(b, a, rtol: 1e-4, atol: 1e-5, "result \(i) on OpenCL vs CPU")
        }
    }

    @Test func seededRandomTensorsAreTheSameOnEveryDevice() throws {
        let shape = [7, 33]
        for device in TestDevices.all {
            let u = try Tensor.uniform(shape, low: -2, high: 3, seed: 42, on: device).toArray()
            let n = try Tensor.normal(shape, mean: 1, std: 2, seed: 42, on: device).toArray()
            #expect(try u == Tensor.uniform(shape, low: -2, high: 3, seed: 42, on: .cpu).toArray(), "\(device) uniform")
            #expect(try n == Tensor.normal(shape, mean: 1, std: 2, seed: 42, on: .cpu).toArray(), "\(device) normal")
            #expect(u.allSatisfy { $0 >= -2 && $0 < 3 })
            #expect(try u != Tensor.uniform(shape, low: -2, high: 3, seed: 43, on: device).toArray())
        }
        // The sample statistics are those asked for.
        let big = try Tensor.normal([20_000], mean: 1, std: 2, seed: 7, on: .cpu).toArray().map(Double.init)
        let mean = big.reduce(0, +) / Double(big.count)
        let variance: Double = big.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(big.count)
        let std = variance.squareRoot()
        #expect(Swift.abs(mean - 1) < 0.05 && Swift.abs(std - 2) < 0.05, "mean \(mean), std \(std)")
        let uni = try Tensor.uniform([20_000], seed: 8, on: .cpu).toArray().map(Double.init)
        let uniMean: Double = uni.reduce(0, +) / Double(uni.count)
        #expect(Swift.abs(uniMean - 0.5) < 0.01)
    }

    @Test func deviceUniformIsBitIdenticalOnEveryDevice() throws {
        let n = 1000
        let expected = (0..<n).map { CounterRandom.uniform(seed: 2024, index: UInt64($0)) }
        for device in TestDevices.all {
            let u = Tensor.deviceUniform([10, 100], seed: 2024, on: device)
            #expect(u.shape == [10, 100])
            let values = try u.toArray()
            #expect(values.map(\.bitPattern) == expected.map(\.bitPattern), "\(device)")
            #expect(values.allSatisfy { $0 >= 0 && $0 < 1 })
            #expect(try values != Tensor.deviceUniform([10, 100], seed: 2025, on: device).toArray())
        }
        let mean = expected.reduce(0, +) / Float(n)
        #expect(Swift.abs(mean - 0.5) < 0.05)
    }

    @Test func movingBetweenDevicesKeepsValues() throws {
        guard TestDevices.openCLAvailable else { return }
        let x = try Tensor(testValues(21, seed: 1), shape: [3, 7], on: .cpu, requiresGrad: true)
        let y = x.to(TestDevices.openCL)
        #expect(try y.device === TestDevices.openCL && y.shape == [3, 7] && y.toArray() == x.toArray())
        #expect(y.requiresGrad && y.isLeaf)
        #expect(try y.to(.cpu).toArray() == x.toArray())
        #expect(x.to(.cpu) === x)
    }

    // MARK: counters

    /// A device of its own, so that tests running in parallel on the shared `opencl:0` do not move its counters.
    static func privateOpenCLDevice() throws -> Device {
        Device(backend: try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0]))
    }

    /// A CPU device with a backend (and counters) of its own: no test running in parallel raises its counts.
    static func privateCPUDevice() -> Device {
        Device(backend: CPUBackend.makePrivate())
    }

    /// About ten ops, forward and backward, on device data.
    static func chain(_ x: Tensor, _ w: Tensor, _ b: Tensor) throws -> Tensor {
        let h = try x.dense(weight: w, bias: b, activation: .relu)
        let z = try (h * 0.5 + h.tanh()).softmax()
        let loss = try z.log().mean(axis: 1).sum() * -1
        try loss.backward()
        return loss
    }

    @Test func opsDoNotReadBackUntilToArray() throws {
        guard TestDevices.openCLAvailable else { return }
        let device = try Self.privateOpenCLDevice()
        let x = try Tensor(testValues(8 * 16, seed: 1), shape: [8, 16], on: device)
        let w = try Tensor(testValues(16 * 5, seed: 2), shape: [16, 5], on: device, requiresGrad: true)
        let b = try Tensor(testValues(5, seed: 3), shape: [5], on: device, requiresGrad: true)
        let before = device.stats
        let loss = try Self.chain(x, w, b)
        let afterOps = device.stats
        #expect(afterOps.hostReads == before.hostReads, "ops read back \(afterOps.hostReads - before.hostReads) times")
        #expect(afterOps.hostWrites == before.hostWrites, "ops wrote from the host \(afterOps.hostWrites - before.hostWrites) times")
        #expect(afterOps.waits == before.waits)
        #expect(afterOps.launches > before.launches + 10)
        let value = try loss.toArray()
        #expect(value.count == 1 && value[0].isFinite)
        #expect(device.stats.hostReads == before.hostReads + 1)
        _ = try #require(w.grad).toArray()
        #expect(device.stats.hostReads == before.hostReads + 2)
    }

    @Test func repeatingAChainReusesPooledBuffers() throws {
        guard TestDevices.openCLAvailable else { return }
        let device = try Self.privateOpenCLDevice()
        let x = try Tensor(testValues(8 * 16, seed: 1), shape: [8, 16], on: device)
        let w = try Tensor(testValues(16 * 5, seed: 2), shape: [16, 5], on: device, requiresGrad: true)
        let b = try Tensor(testValues(5, seed: 3), shape: [5], on: device, requiresGrad: true)
        func step() throws -> Float {
            w.zeroGrad(); b.zeroGrad()
            return try Self.chain(x, w, b).item()
        }
        let first = try step()
        let allocations = device.stats.allocations
        let second = try step()
        #expect(device.stats.allocations == allocations, "the second run allocated \(device.stats.allocations - allocations) new buffers")
        #expect(first == second)
    }
}
