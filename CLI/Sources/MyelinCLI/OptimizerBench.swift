import ArgumentParser
import Foundation
import Myelin

/// Time per `step()` of each optimizer on one parameter of `count` elements, on the CPU and OpenCL.
struct OptimizerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimizers", abstract: "Milliseconds per optimizer step (one fused kernel per parameter) on each device.")

    @Option(parsing: .unconditional, help: "Elements in the parameter.") var count = 1 << 20
    @Option(parsing: .unconditional, help: "Timed steps (the median is reported).") var steps = 30
    @Option(parsing: .unconditional, help: "OpenCL device index (skipped when there is none).") var opencl = 0

    func validate() throws {
        try checkingValues {
            try ValueCheck.atLeast(1, count, name: "--count")
            try ValueCheck.atLeast(1, steps, name: "--steps")
            try ValueCheck.atLeast(0, opencl, name: "--opencl")
        }
    }

    func run() throws {
        var devices: [Device] = [.cpu]
        if let cl = try? Device.make(.opencl(index: opencl)) { devices.append(cl) }
        let configurations: [(String, ([Tensor]) throws -> Optimizer)] = [
            ("SGD", { try SGD(parameters: $0, learningRate: 0.1) }),
            ("SGD momentum 0.9", { try SGD(parameters: $0, learningRate: 0.1, momentum: 0.9) }),
            ("Adagrad", { try Adagrad(parameters: $0) }),
            ("RMSProp centered momentum", { try RMSProp(parameters: $0, momentum: 0.9, centered: true) }),
            ("Adam", { try Adam(parameters: $0) }),
            ("AdamW amsgrad", { try AdamW(parameters: $0, amsgrad: true) }),
        ]
        print("optimizer step, \(count) elements, median of \(steps) steps")
        for device in devices {
            // The parameter, its gradient and up to three state tensors; drawn on the host first.
            try device.checkAllocation(shape: [count, 5], for: "--count \(count): a parameter with its gradient and state")
            try Device.cpu.checkAllocation(shape: [count], for: "--count \(count): the parameter's values on the host")
            for (name, make) in configurations {
                let p = Tensor.uniform([count], seed: 1, on: device)
                p.requiresGrad = true
                let optimizer = try make([p])
                // p.grad = g through autograd: d/dp Σ p·g = g.
                try (p * Tensor.uniform([count], low: -1, high: 1, seed: 2, on: device)).sum().backward()
                try optimizer.step()
                device.synchronize()
                var times: [Double] = []
                for _ in 0..<steps {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    try optimizer.step()
                    device.synchronize()
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                }
                times.sort()
                let ms = times[times.count / 2]
                let gbps = Double(count) * 4 * bytesPerElement(name) / (ms / 1e3) / 1e9
                let label = "\(device.name) \(name)".padding(toLength: 38, withPad: " ", startingAt: 0)
                print(label + String(format: "%8.3f ms  %6.1f GB/s (parameter, gradient and state traffic)", ms, gbps))
            }
        }
    }

    /// Float reads + writes per element: parameter (r+w), gradient (r), each state buffer (r+w).
    private func bytesPerElement(_ name: String) -> Double {
        switch name {
        case "SGD": return 3
        case "SGD momentum 0.9", "Adagrad": return 5
        case "Adam": return 7
        default: return 9   // RMSProp centered momentum and AdamW amsgrad: three state buffers
        }
    }
}
