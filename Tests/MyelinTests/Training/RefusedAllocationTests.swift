import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A host allocation the system refuses (as it does past `ulimit -v`), or memory the device reports it does not
/// have, inside the library's throwing paths is an error naming the request and the limit, never a stop of the
/// program (issue 28, item 3): the optimizer's state (made or loaded), backward's gradients, `fit`'s check before training, the
/// checked creation of small tensors. Each test runs on a CPU backend of its own, whose allocations it limits.
@Suite struct RefusedAllocationTests {
    /// A CPU device of its own, and its backend to limit.
    private func limitedDevice() -> (Device, CPUBackend) {
        let backend = CPUBackend.makePrivate()
        return (Device(backend: backend), backend)
    }

    @Test func anOptimizerStateTheSystemRefusesIsAnErrorAndChangesNothing() throws {
        let (device, backend) = limitedDevice()
        let p = try Tensor(shape: [100_000], repeating: 1, on: device)
        p.requiresGrad = true
        try (p * p).sum().backward()
        let adam = try Adam(parameters: [p], learningRate: 0.1)
        backend.limitMemory(refused: 256 << 10)
        let text = errorText { try adam.step() }
        #expect(text.hasPrefix("Adam: state 'exp_avg' of parameter 0: a result of shape [100000] needs 391 KiB, the device cpu has ")
                    && text.contains("the system refused the allocation"), "\(text)")
        #expect(try p.toArray().allSatisfy { $0 == 1 } && adam.stateTensors().count == 1, "nothing changed")
        backend.limitMemory()
        try adam.step()
        #expect(try p.toArray().allSatisfy { abs($0 - 0.9) < 1e-5 } && adam.stateTensors().count == 4)
        // Loading state copies it through the check before replacing anything.
        let state = Dictionary(uniqueKeysWithValues: adam.stateTensors())
        func slots() -> [Tensor] { adam.stateTensors().filter { $0.0.contains("exp_avg") }.map(\.1) }
        let before = slots()
        backend.limitMemory(refused: 256 << 10)
        let load = errorText { try adam.loadState(state) }
        #expect(load.hasPrefix("Adam: state '0.exp_avg': a result of shape [100000] needs 391 KiB"), "\(load)")
        #expect(before.count == 2 && zip(slots(), before).allSatisfy { $0 === $1 }, "the state is unchanged")
        backend.limitMemory()
        try adam.loadState(state)
    }

    @Test func gradientsTheSystemRefusesAreAnErrorNamingTheOp() throws {
        let (device, backend) = limitedDevice()
        let x = try Tensor(shape: [100_000], repeating: 1, on: device)
        x.requiresGrad = true
        let loss = x.relu().sum()
        let y = x.relu(), seed = try Tensor(shape: [100_000], repeating: 1, on: device)
        backend.limitMemory(refused: 256 << 10)
        let broadcast = errorText { try loss.backward() }
        #expect(broadcast.hasPrefix("broadcast of [] to [100000]: a result of shape [100000] needs 391 KiB"), "\(broadcast)")
        let relu = errorText { try y.backward(seed) }
        #expect(relu.hasPrefix("backward through relu: a result of shape [100000] needs 391 KiB")
                    && relu.contains("the system refused the allocation"), "\(relu)")
        #expect(x.grad == nil)
        backend.limitMemory()
        try y.backward(seed)
        #expect(try x.grad?.toArray().allSatisfy { $0 == 1 } == true)
    }

    /// `fit` checks before the first batch that the gradients and the optimizer's state fit in what the device
    /// reports, naming the counts, the bytes and the limit; the model is untouched.
    @Test func fitChecksGradientsAndOptimizerStateFirst() throws {
        let (device, backend) = limitedDevice()
        let model = Sequential([Dense(inputSize: 64, outputSize: 1000, seed: 1, device: device),
                                Dense(inputSize: 1000, outputSize: 1, seed: 2, device: device)])
        let data = try Dataset(features: Tensor(shape: [8, 64], repeating: 0.5, on: device),
                               targets: Tensor(shape: [8, 1], repeating: 1, on: device))
        let before = try model.parameters.map { try $0.toArray() }
        let adam = try Adam(parameters: model.parameters)
        backend.limitMemory(reported: 512 << 10)
        let text = errorText {
            try model.fit(data, epochs: 1, batchSize: 4, loss: .meanSquaredError, optimizer: adam, verbosity: .silent)
        }
        #expect(text == "fit: 4 parameter tensors of 66001 elements: their gradients (258 KiB) and the Adam state "
                    + "(516 KiB) needs 773 KiB, the device cpu has 512 KiB of memory available", "\(text)")
        #expect(try model.parameters.map { try $0.toArray() } == before && model.parameters.allSatisfy { $0.grad == nil })
        backend.limitMemory()
        try model.fit(data, epochs: 1, batchSize: 4, loss: .meanSquaredError, optimizer: adam, verbosity: .silent)
    }

    /// The checked creation asks the system also for small tensors: a refusal is an error, not a stop.
    @Test func aSmallTensorTheSystemRefusesIsAnError() throws {
        let (device, backend) = limitedDevice()
        backend.limitMemory(refused: 4096)
        let text = errorText { _ = try Tensor(shape: [2000], on: device) }
        #expect(text.hasPrefix("Tensor(shape:repeating:): a result of shape [2000] needs 7.8 KiB, the device cpu has ")
                    && text.contains("the system refused the allocation"), "\(text)")
        #expect(try Tensor(shape: [100], on: device).count == 100)
    }
}
