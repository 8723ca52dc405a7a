// Run by scripts/mpi-check. Two modes:
//   mpirun -np 2 MyelinMPICheck --device D --checkpoint FILE
//       trains a small network data-parallel for 20 steps (global batch 15, shares of 7 and 8 samples, a last
//       batch of 7 split 3 + 4), saves a checkpoint from rank 0 (ModelCheckpoint), then every rank trains the same
//       network in one process on the same global batches and checks parameters and logs agree to 1e-5.
//   MyelinMPICheck --device D --load FILE      (no mpirun)
//       loads the checkpoint written by the distributed run into a fresh network and checks it equals the network
//       trained in this one process.
//   MyelinMPICheck --device D --probe          exits 1 when the device cannot be made.
//   mpirun -np 2 MyelinMPICheck --device D --allreduce-floats N
//       times reduceGradients on N gradient values (one tensor, after a barrier, 20 calls; device reads and writes
//       included), for Benchmarks/ddp_overhead.
// Exits 1 with a message on any difference.
import Foundation
import Myelin
import MyelinMPI

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("mpi-check: \(message)\n".utf8))
    exit(1)
}

let arguments = Array(CommandLine.arguments.dropFirst())
@MainActor func option(_ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}
let deviceName = option("--device") ?? "cpu"
let device: Device
do { device = try Device.make(MPILaunch.deviceSpec(parsing: deviceName)) } catch { fail("\(error)") }
if arguments.contains("--probe") { print("mpi-check: device \(device.name)"); exit(0) }   // does the device exist?

let samples = 142, inputs = 13, classes = 7, batchSize = 15, epochs = 2, tolerance: Float = 1e-5

/// The same data on every rank: features from a fixed generator, labels from a fixed rule with noise.
@MainActor func makeData() throws -> Dataset {
    var state: UInt64 = 0x1234_5678
    func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 24) * 2 - 1
    }
    let x = (0..<samples * inputs).map { _ in next() }
    let labels = (0..<samples).map { i in (Int((x[i * inputs] + 1) * 3) + Int((next() + 1) * 2)) % classes }
    return try Dataset(features: Tensor(x, shape: [samples, inputs], on: device),
                       targets: Tensor(labels: labels, classes: classes, on: device))
}

@MainActor func makeModel(seed: UInt64) -> Sequential {
    Random.seed(seed)
    return Sequential([
        Dense(inputSize: inputs, outputSize: 33, activation: .relu, device: device),
        Dense(inputSize: 33, outputSize: 9, activation: .tanh, device: device),
        Dense(inputSize: 9, outputSize: classes, device: device),
    ])
}

/// Trains the network of seed 42 in this process (the reference).
@MainActor func trainSingle(_ data: Dataset) throws -> (Sequential, History) {
    let model = makeModel(seed: 42)
    let adam = try Adam(parameters: model.parameters, learningRate: 1e-2)
    let history = try model.fit(data, epochs: epochs, batchSize: batchSize, loss: .softmaxCrossEntropy, optimizer: adam,
                                metrics: [.accuracy], seed: 7, verbosity: .silent)
    return (model, history)
}

func maxDifference(_ a: any Layer, _ b: any Layer) throws -> (Float, String) {
    var worst: (Float, String) = (0, "")
    for ((name, x), (_, y)) in zip(a.namedTensors, b.namedTensors) {
        for (u, v) in try zip(x.toArray(), y.toArray()) {
            let d = abs(u - v)
            if !(d <= worst.0) { worst = (d.isNaN ? .infinity : d, name) }
        }
    }
    return worst
}

do {
    let data = try makeData()
    if let path = option("--load") {
        guard !MPILaunch.isLaunched else { fail("--load is the single-process half: run it without mpirun") }
        let (reference, _) = try trainSingle(data)
        let loaded = makeModel(seed: 99)
        let checkpoint = try TrainingCheckpoint.load(from: URL(fileURLWithPath: path), into: loaded, optimizer: nil)
        let (d, name) = try maxDifference(reference, loaded)
        guard checkpoint.epoch == epochs, d <= tolerance else {
            fail("the checkpoint of the distributed run (epoch \(checkpoint.epoch)) differs from single-process training by \(d) in '\(name)'")
        }
        print("mpi-check: [\(device.name)] the distributed run's checkpoint loads in one process and equals its training (max difference \(d))")
        exit(0)
    }
    if let text = option("--allreduce-floats"), let n = Int(text), n > 0 {
        let ddp = try DistributedDataParallel()
        let p = Tensor.zeros([n], on: device)
        p.grad = Tensor.ones([n], on: device)
        for _ in 0..<3 { try ddp.reduceGradients(of: [p], weight: 0.5) }
        try ddp.barrier()
        ddp.resetCounters()
        let start = Date()
        for _ in 0..<20 { try ddp.reduceGradients(of: [p], weight: 0.5) }
        let ms = Date().timeIntervalSince(start) / 20 * 1000
        guard try p.grad!.toArray().allSatisfy({ $0 == 1 }) else { fail("the reduced gradient is not the mean") }
        if ddp.isMainRank {
            print(String(format: "myelin allreduce alone (%@): %.2f MB in %.2f ms, of which %.2f ms in MPI", device.name, Double(4 * n) / 1e6, ms,
                         ddp.communicationSeconds / 20 * 1000))
        }
        exit(0)
    }
    guard let path = option("--checkpoint") else { fail("give --checkpoint FILE (under mpirun) or --load FILE") }
    let ddp = try DistributedDataParallel(bucketBytes: 1024)   // small buckets: several per step, one tensor alone
    guard ddp.worldSize == 2 else { fail("run with mpirun -np 2 (world size is \(ddp.worldSize))") }
    // Each rank starts from a different network: the broadcast must make rank 0's everyone's.
    let model = makeModel(seed: 42 + UInt64(ddp.rank))
    let adam = try Adam(parameters: model.parameters, learningRate: 1e-2)
    let save = ModelCheckpoint(url: URL(fileURLWithPath: path))
    let history = try model.fit(data, epochs: epochs, batchSize: batchSize, loss: .softmaxCrossEntropy, optimizer: adam,
                                metrics: [.accuracy], callbacks: [save], seed: 7, distributed: ddp, verbosity: .silent)
    let steps = ddp.reduceCalls
    guard steps == 20 else { fail("rank \(ddp.rank): \(steps) gradient reductions, expected 20 steps") }
    let (reference, referenceHistory) = try trainSingle(data)
    let (d, name) = try maxDifference(reference, model)
    guard d <= tolerance else {
        fail("rank \(ddp.rank) on \(device.name): data-parallel training differs from one process on the global batch by \(d) in '\(name)' (tolerance \(tolerance))")
    }
    for key in ["loss", "accuracy"] {
        let (mine, theirs) = (history[key] ?? [], referenceHistory[key] ?? [])
        guard mine.count == epochs, theirs.count == epochs else { fail("rank \(ddp.rank): no '\(key)' for every epoch in the history") }
        for (e, (u, v)) in zip(mine, theirs).enumerated() where !(abs(u - v) <= Double(tolerance) * max(1, abs(v))) {
            fail("rank \(ddp.rank): epoch \(e + 1) \(key) is \(u) data-parallel, \(v) in one process")
        }
    }
    // Only rank 0 wrote the checkpoint.
    try ddp.barrier()
    print("mpi-check: [\(device.name)] rank \(ddp.rank)/\(ddp.worldSize): 20 data-parallel steps equal one process on the global batch (max parameter difference \(d), \(ddp.reducedBytes / steps) gradient bytes per step)")
} catch {
    fail("\(error)")
}
