import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Adam's multi-tensor launches (`OpenCLBackend.optimizerSteps`) against the per-parameter kernel they replace:
/// the same bits in the parameters and the state, for any grouping, and fewer launches.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct MultiTensorOptimizerTests {
    /// Sizes around the work-item counts (64, 2^16) and odd ones; 11 tensors: a launch of 8 and one of 3.
    static let sizes = [37, 1, 70_001, 64, 7, 129, 2, 65_536, 33, 5, 300]

    /// Runs three Adam steps over `sizes` on `backend`, through `apply` (per parameter or grouped), where the third
    /// step's hyperparameters differ for every other tensor (as after a step without a gradient); returns every
    /// parameter and state value.
    static func adamSteps(on backend: OpenCLBackend, amsgrad: Bool, decoupled: Bool,
                          _ apply: ([OptimizerUpdate]) -> Void) -> [[Float]] {
        let tensors = sizes.enumerated().map { (k, n) in
            (p: KernelExercise.upload(backend, testValues(n, seed: UInt64(k + 1))),
             g: KernelExercise.upload(backend, testValues(n, seed: UInt64(k + 50))),
             m: backend.allocate(n), v: backend.allocate(n), x: backend.allocate(n), n: n)
        }
        for step in 1...3 {
            let updates = tensors.enumerated().map { (k, t) in
                let s = step == 3 && k % 2 == 1 ? 2 : step
                let h = AdamStepParameters(learningRate: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01,
                                           stepSize: 0.01 / Float(s), biasCorrection2Sqrt: 0.05 * Float(s),
                                           decoupled: decoupled, amsgrad: amsgrad, first: step == 1)
                return OptimizerUpdate(step: .adam(h, expAvg: t.m, expAvgSq: t.v, maxExpAvgSq: amsgrad ? t.x : nil),
                                       param: t.p, grad: t.g, count: t.n)
            }
            apply(updates)
        }
        return tensors.flatMap { t in
            [t.p, t.m, t.v] .map { KernelExercise.download(backend, $0, t.n) } + (amsgrad ? [KernelExercise.download(backend, t.x, t.n)] : [])
        }
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func groupedUpdatesAreBitIdenticalToPerParameterOnes(amsgrad: Bool, decoupled: Bool) throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        let single = Self.adamSteps(on: backend, amsgrad: amsgrad, decoupled: decoupled) { updates in
            for u in updates { backend.optimizerStep(u.step, param: u.param, grad: u.grad, count: u.count) }
        }
        for items: Int? in [nil, 64, 1] {
            let grouped = Self.adamSteps(on: backend, amsgrad: amsgrad, decoupled: decoupled) {
                backend.optimizerSteps($0, items: items)
            }
            #expect(grouped.count == single.count)
            for (k, (a, b)) in zip(grouped, single).enumerated() {
                #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "output \(k), \(String(describing: items)) items")
            }
        }
    }

    /// An Adam step over a 6-parameter model is one launch on an OpenCL device that groups updates (GPUs), whatever
    /// the layer sizes.
    @Test func adamStepsAModelInOneLaunch() throws {
        let device = try OptimizerTests.privateGroupingOpenCLDevice()
        let model = Sequential {
            Dense(inputSize: 7, outputSize: 33, activation: .relu, seed: 1, device: device)
            Dense(inputSize: 33, outputSize: 5, activation: .relu, seed: 2, device: device)
            Dense(inputSize: 5, outputSize: 3, seed: 3, device: device)
        }
        let adam = try Adam(parameters: model.parameters, learningRate: 1e-2)
        let x = try Tensor(testValues(4 * 7, seed: 3), shape: [4, 7], on: device)
        let labels = Tensor([0, 2, 1, 1], on: device)
        for _ in 0..<2 {
            adam.zeroGrad()
            try softmaxCrossEntropy(logits: model(x), labels: labels).backward()
            let before = device.stats.launches
            try adam.step()
            #expect(device.stats.launches - before == 1)
        }
    }
}
