import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

@Suite struct RegularizationTests {
    static let shapes = [[3], [2, 7], [1]]

    /// Parameters of odd shapes with values away from 0 (so |w| is differentiable within a finite-difference step).
    static func parameters(on device: Device) throws -> [Tensor] {
        try shapes.enumerated().map { k, shape in
            let values = testValues(shape.reduce(1, *), seed: UInt64(40 + k)).map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }
            return try Tensor(values, shape: shape, on: device, requiresGrad: true)
        }
    }

    @Test(arguments: TestDevices.all)
    func penaltiesHaveTheDocumentedValues(device: Device) throws {
        let params = try Self.parameters(on: device)
        let all = try params.flatMap { try $0.toArray() }.map(Double.init)
        let l1 = try l1Penalty(params, lambda: 0.3)
        let l2 = try l2Penalty(params, lambda: 0.3)
        #expect(l1.shape == [] && l2.shape == [])
        expectClose([try l1.item()], [0.3 * all.reduce(0) { $0 + Swift.abs($1) }], rtol: 1e-5, atol: 1e-6, "l1 on \(device)")
        expectClose([try l2.item()], [0.15 * all.reduce(0) { $0 + $1 * $1 }], rtol: 1e-5, atol: 1e-6, "l2 on \(device)")
    }

    @Test(arguments: TestDevices.all)
    func penaltyGradientsMatchFiniteDifferences(device: Device) throws {
        let lambda: Float = 0.7
        for (name, penalty) in [("l1", l1Penalty), ("l2", l2Penalty)] as [(String, ([Tensor], Float) throws -> Tensor)] {
            let params = try Self.parameters(on: device)
            try penalty(params, lambda).backward()
            let values = try params.map { try $0.toArray() }
            let h: Float = 1e-2
            for (k, p) in params.enumerated() {
                var numeric: [Double] = []
                for i in 0..<p.count {
                    func evaluate(_ delta: Float) throws -> Double {
                        var v = values
                        v[k][i] += delta
                        let shifted = try zip(v, Self.shapes).map { try Tensor($0, shape: $1, on: device) }
                        return Double(try penalty(shifted, lambda).item())
                    }
                    numeric.append((try evaluate(h) - evaluate(-h)) / (2 * Double(h)))
                }
                expectClose(try p.grad!.toArray(), numeric, rtol: 2e-3, atol: 2e-3, "\(name) gradient of parameter \(k) on \(device)")
            }
            // Closed forms: λ·sign(w) and λ·w (the latter is exactly PyTorch-style weight decay λ).
            for (p, v) in zip(params, values) {
                let expected = v.map { Double(lambda) * (name == "l1" ? ($0 > 0 ? 1 : -1) : Double($0)) }
                expectClose(try p.grad!.toArray(), expected, rtol: 1e-5, atol: 1e-6, "\(name) closed-form gradient on \(device)")
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func l2PenaltyGradientEqualsSGDWeightDecay(device: Device) throws {
        // SGD on loss + l2Penalty(λ) takes the same step as SGD with weightDecay λ on the loss alone.
        let values = testValues(5, seed: 9), g = testValues(5, seed: 10)
        let c = try Tensor(g, shape: [5], on: device)
        let a = try Tensor(values, shape: [5], on: device, requiresGrad: true)
        let b = try Tensor(values, shape: [5], on: device, requiresGrad: true)
        try ((a * c).sum() + l2Penalty([a], lambda: 0.2)).backward()
        try SGD(parameters: [a], learningRate: 0.1).step()
        try (b * c).sum().backward()
        try SGD(parameters: [b], learningRate: 0.1, weightDecay: 0.2).step()
        expectClose(try a.toArray(), try b.toArray(), rtol: 1e-6, atol: 1e-7, "penalty vs weight decay on \(device)")
    }

    @Test(arguments: TestDevices.all)
    func clipByValueClampsEachElement(device: Device) throws {
        let p = try Tensor([0, 0, 0, 0, 0], shape: [5], on: device, requiresGrad: true)
        let q = try Tensor([0, 0], shape: [2], on: device, requiresGrad: true)
        let untouched = try Tensor([0], shape: [1], on: device, requiresGrad: true)
        try setGradient(p, [-3, -0.5, 0, 0.25, 7])
        try setGradient(q, [1.5, -1])
        try clipGradients([p, q, untouched], byValue: 1)
        #expect(try p.grad!.toArray() == [-1, -0.5, 0, 0.25, 1])
        #expect(try q.grad!.toArray() == [1, -1])
        #expect(untouched.grad == nil)
        #expect(throws: RegularizationError.self) { try clipGradients([p], byValue: -1) }
    }

    @Test(arguments: TestDevices.all)
    func clipByGlobalNormScalesAllGradientsTogether(device: Device) throws {
        let gp: [Float] = [3, 0, -4], gq: [Float] = [12]   // global norm √(9 + 16 + 144) = 13
        let p = try Tensor([0, 0, 0], shape: [3], on: device, requiresGrad: true)
        let q = try Tensor([0], shape: [1], on: device, requiresGrad: true)
        try setGradient(p, gp); try setGradient(q, gq)
        let norm = try #require(try globalGradientNorm([p, q]))
        expectClose([try norm.item()], [13.0], rtol: 1e-6, atol: 0, "global norm on \(device)")

        // Above the limit: scaled by maxNorm / (13 + 1e-6), returned norm is the one before clipping.
        let read = try clipGradients([p, q], byGlobalNorm: 6.5, readNorm: true)
        expectClose([try #require(read)], [13.0], rtol: 1e-6, atol: 0, "returned norm on \(device)")
        let factor = 6.5 / (13 + 1e-6)
        expectClose(try p.grad!.toArray(), gp.map { Double($0) * factor }, rtol: 1e-6, atol: 1e-7, "clipped p on \(device)")
        expectClose(try q.grad!.toArray(), gq.map { Double($0) * factor }, rtol: 1e-6, atol: 1e-7, "clipped q on \(device)")
        expectClose([try #require(try globalGradientNorm([p, q])).item()], [6.5], rtol: 1e-5, atol: 0, "norm after clipping")

        // Below the limit: unchanged; without readNorm nothing is returned.
        try setGradient(p, gp); try setGradient(q, gq)
        #expect(try clipGradients([p, q], byGlobalNorm: 100) == nil)
        #expect(try p.grad!.toArray() == gp && q.grad!.toArray() == gq)

        // Through the optimizer, and with no gradients at all.
        let sgd = try SGD(parameters: [p, q], learningRate: 1)
        try sgd.clipGradients(byValue: 2)
        #expect(try q.grad!.toArray() == [2])
        sgd.zeroGrad()
        #expect(try sgd.clipGradients(byGlobalNorm: 1, readNorm: true) == nil)
        #expect(throws: RegularizationError.self) { try clipGradients([p], byGlobalNorm: 0) }
    }

    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func clipByGlobalNormStaysOnTheDevice() throws {
        let device = try OptimizerTests.privateOpenCLDevice()
        let params = try [[4, 3], [3]].map { try Tensor(testValues($0.reduce(1, *), seed: 1), shape: $0, on: device, requiresGrad: true) }
        for p in params { try setGradient(p, testValues(p.count, seed: 2).map { $0 * 10 }) }
        try clipGradients(params, byGlobalNorm: 0.5)   // warms the buffer pool
        for p in params { try setGradient(p, testValues(p.count, seed: 2).map { $0 * 10 }) }
        let before = device.stats
        try clipGradients(params, byGlobalNorm: 0.5)
        try clipGradients(params, byValue: 0.1)
        let after = device.stats
        #expect(after.hostReads == before.hostReads)
        #expect(after.waits == before.waits)
        #expect(after.hostWrites == before.hostWrites)
    }

    @Test func badParameterListsThrow() throws {
        #expect(throws: RegularizationError.noParameters("l1Penalty")) { try l1Penalty([], lambda: 1) }
        #expect(throws: RegularizationError.noParameters("l2Penalty")) { try l2Penalty([], lambda: 1) }
        #expect(try globalGradientNorm([]) == nil)
        if TestDevices.openCLAvailable {
            let a = try Tensor([1], shape: [1], on: .cpu, requiresGrad: true)
            let b = try Tensor([1], shape: [1], on: TestDevices.openCL, requiresGrad: true)
            #expect(throws: RegularizationError.deviceMismatch("l2Penalty", "cpu", "opencl:0")) { try l2Penalty([a, b], lambda: 1) }
            try setGradient(a, [1]); try setGradient(b, [1])
            #expect(throws: RegularizationError.self) { try clipGradients([a, b], byGlobalNorm: 1) }
        }
    }
}
