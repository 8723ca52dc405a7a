import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Every activation's forward and backward formula against the Double references, including large |x|
/// (the activations and their references are in Support/ActivationTestSupport.swift).
@Suite struct ActivationTests {
    /// Random values plus the awkward ones: large magnitudes, zero, values near the kinks.
    static let inputs: [Float] = testValues(121, seed: 77, low: -6, high: 6)
        + [0, 1e-3, -1e-3, 20, -20, 80, -80, 100, -100, 0.5, -0.5, 3, -3]

    @Test(arguments: TestDevices.all)
    func forwardMatchesReference(device: Device) throws {
        let x = try Tensor(Self.inputs, shape: [Self.inputs.count], on: device)
        for act in TestActivations.all {
            let y = try x.activation(act).toArray()
            expectClose(y, Self.inputs.map { Reference.activation(act, Double($0)) }, rtol: 2e-5, atol: 1e-6, "\(device) \(act)")
        }
    }

    @Test(arguments: TestDevices.all)
    func namedMethodsMatchTheirActivations(device: Device) throws {
        let v = testValues(33, seed: 5, low: -4, high: 4)
        let x = try Tensor(v, shape: [3, 11], on: device)
        for (y, act) in TestActivations.namedMethods(of: x) {
            #expect(y.shape == [3, 11])
            expectClose(try y.toArray(), v.map { Reference.activation(act, Double($0)) }, rtol: 2e-5, atol: 1e-6, "\(device) \(act)")
        }
    }

    /// No NaN or infinity where the function is finite, even at ±80 and ±100.
    @Test(arguments: TestDevices.all)
    func largeInputsStayFinite(device: Device) throws {
        let big: [Float] = [80, -80, 100, -100, 1e4, -1e4]
        let x = try Tensor(big, shape: [big.count], on: device, requiresGrad: true)
        for act in TestActivations.differentiable {
            let y = x.activation(act)
            let values = try y.toArray()
            #expect(values.allSatisfy { $0.isFinite }, "\(device) \(act) forward at large |x|: \(values)")
            try y.backward(Tensor.ones(y.shape, on: device))
            let g = try #require(x.grad).toArray()
            #expect(g.allSatisfy { $0.isFinite }, "\(device) \(act) gradient at large |x|: \(g)")
            x.zeroGrad()
        }
        let sig = try x.sigmoid().toArray()
        #expect(sig[0] == 1 && sig[1] >= 0 && sig[1] < 1e-30, "\(device) sigmoid(±80) = \(sig)")
        let sp = try x.softplus().toArray()
        #expect(sp[0] == 80 && sp[1] >= 0 && sp[1] < 1e-30, "\(device) softplus(±80) = \(sp)")
    }

    /// gx = gy · f'(x) through the device interface, with y = f(x) computed by the device.
    @Test(arguments: TestDevices.all)
    func backwardFormulasMatchReference(device: Device) throws {
        let xs = Self.inputs.filter { Swift.abs($0) > 1e-3 || $0 == 0 }
        let gyValues = testValues(xs.count, seed: 78, low: -2, high: 2)
        let x = try Tensor(xs, shape: [xs.count], on: device)
        let gy = try Tensor(gyValues, shape: [xs.count], on: device)
        for act in TestActivations.differentiable {
            let y = x.activation(act)
            let gx = try x.activationGradient(act, y: y, gy: gy).toArray()
            let expected = zip(xs, gyValues).map { x, g -> Double in
                // relu-like kinks at exactly 0 follow the convention f'(0) = the left slope.
                Double(g) * Reference.activationDerivative(act, Double(x))
            }
            expectClose(gx, expected, rtol: 1e-4, atol: 1e-6, "\(device) \(act) backward")
        }
    }

    /// The backward used by autograd (`backward()` through `activation`) agrees with the formula too.
    @Test(arguments: TestDevices.all)
    func autogradThroughActivations(device: Device) throws {
        let xs = testValues(33, seed: 79, low: -5, high: 5)
        for act in TestActivations.differentiable {
            let x = try Tensor(xs, shape: [3, 11], on: device, requiresGrad: true)
            try x.activation(act).sum().backward()
            expectClose(try #require(x.grad).toArray(), xs.map { Reference.activationDerivative(act, Double($0)) },
                        rtol: 1e-4, atol: 1e-6, "\(device) \(act) autograd")
        }
    }

    @Test(arguments: TestDevices.all)
    func stepHasNoGradient(device: Device) throws {
        let x = try Tensor([-1, 0.5, 2], shape: [3], on: device, requiresGrad: true)
        let y = x.step()
        #expect(try y.toArray() == [0, 1, 1])
        expectError(containing: ["step", "no gradient"]) { try y.sum().backward() }
        let w = try Tensor([1, 2, 3, 4, 5, 6], shape: [3, 2], on: device, requiresGrad: true)
        let d = try x.reshaped([1, 3]).dense(weight: w, bias: nil, activation: .step)
        expectError(containing: ["step", "no gradient"]) { try d.sum().backward() }
        // Without gradients step is an ordinary op.
        let plain = try Tensor([-1, 0.5], shape: [2], on: device).step()
        #expect(try plain.toArray() == [0, 1])
        #expect(!plain.requiresGrad)
    }
}
