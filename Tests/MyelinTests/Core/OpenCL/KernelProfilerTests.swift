import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `MYELIN_PROFILE_KERNELS`: a profiling queue whose per-kernel counts match the launches, with device times that
/// are not negative; without the variable, no profiler.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct KernelProfilerTests {
    func profiledDevice(_ value: String? = "1") throws -> (OpenCLBackend, Device) {
        var environment = ProcessInfo.processInfo.environment
        environment["MYELIN_PROFILE_KERNELS"] = value
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0], environment: environment)
        return (backend, Device(backend: backend))
    }

    /// Fills, copies and square roots: one entry per kernel, counts equal to the launches (past the profiler's window of
    /// pending events), times >= 0, and the launch counter agrees.
    @Test func countsEqualTheLaunches() throws {
        let (backend, device) = try profiledDevice()
        #expect(device.profilesKernels)
        let a = backend.allocate(33), b = backend.allocate(33)
        _ = device.kernelProfile(reset: true)
        let launchesBefore = device.stats.launches
        let fills = KernelProfiler.window + 7  // more than the window: the older half is read while launching
        for i in 0..<fills { backend.fill(a, value: Float(i), offset: 0, count: 33) }
        for _ in 0..<2 { backend.copy(a, sourceOffset: 0, to: b, destinationOffset: 0, count: 33) }
        for _ in 0..<3 { backend.unary(.sqrt, x: a, out: b, count: 33) }
        let profile = try #require(device.kernelProfile(reset: true))
        let counts = Dictionary(uniqueKeysWithValues: profile.entries.map { ($0.kernel, $0.count) })
        #expect(counts == ["fill": fills, "(clEnqueueCopyBuffer)": 2, "unary_sqrt": 3], "\(profile.table)")
        #expect(profile.entries.allSatisfy { $0.seconds >= 0 && $0.meanSeconds >= 0 })
        #expect(profile.entries.map(\.count).reduce(0, +) == device.stats.launches - launchesBefore)
        #expect(profile.entries.map(\.seconds) == profile.entries.map(\.seconds).sorted(by: >))
        // Reset: the next profile starts empty.
        #expect(device.kernelProfile()?.entries.isEmpty == true)
        // The table names each kernel; each JSON line reads back with its count.
        for kernel in counts.keys { #expect(profile.table.contains(kernel)) }
        for line in profile.jsonLines {
            let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let kernel = try #require(object["kernel"] as? String)
            #expect(object["count"] as? Int == counts[kernel])
            #expect((object["total_ms"] as? Double).map { $0 >= 0 } == true)
            #expect(object["profile_device"] as? String == "opencl:0")
        }
    }

    /// A captured step's replays are profiled too (the prepared launches carry their kernel's name): the replayed
    /// launches are all counted.
    @Test func replayedLaunchesAreCounted() throws {
        let (_, device) = try profiledDevice("json")
        let model = Sequential {
            Dense(inputSize: 2, outputSize: 3, activation: .sigmoid, seed: 1, device: device)
            Dense(inputSize: 3, outputSize: 1, seed: 2, device: device)
        }
        let x = try Tensor([0, 0, 0, 1, 1, 0, 1, 1], shape: [4, 2], on: device)
        let t = try Tensor([0, 1, 1, 0], shape: [4, 1], on: device)
        let step = try model.captureStep(loss: .halfSumOfSquares, optimizer: SGD(parameters: model.parameters, learningRate: 0.1))
        for _ in 0..<2 { _ = try step(x, t) }
        device.synchronize()
        _ = device.kernelProfile(reset: true)
        let launchesBefore = device.stats.launches
        for _ in 0..<5 { _ = try step(x, t) }
        let profile = try #require(device.kernelProfile(reset: true))
        let launched = device.stats.launches - launchesBefore
        #expect(launched > 0)
        #expect(profile.entries.map(\.count).reduce(0, +) == launched, "\(profile.table)")
        #expect(profile.entries.contains { $0.kernel.contains("gemm") }, "\(profile.table)")
    }

    /// Without the variable (or with 0 / off) there is no profiler and no profile.
    @Test func offWithoutTheVariable() throws {
        for value in [nil, "0", "off", ""] as [String?] {
            let (backend, device) = try profiledDevice(value)
            #expect(backend.profiler == nil)
            #expect(!device.profilesKernels)
            #expect(device.kernelProfile() == nil)
        }
        #expect(KernelProfileMode("json") == .json)
        #expect(KernelProfileMode("TABLE") == .table)
        #expect(KernelProfileMode("1") == .table)
    }
}
