import ArgumentParser
import Foundation
import Myelin
import MyelinMPI

/// `mpirun -np 2 myelin bench allreduce`: the time of `DistributedDataParallel.reduceGradients` on gradients of a
/// given size alone (no training, the ranks in step after a barrier): the device read, the weighting, the
/// `MPI_Allreduce` calls and the device write, and the part in MPI.
struct AllreduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Under mpirun: time the data-parallel gradient allreduce (DistributedDataParallel) of N values alone.")
    @OptionGroup var device: DeviceOptions
    @Option(parsing: .unconditional, help: "Gradient values (floats) per step (default 535818: the Fashion-MNIST MLP).")
    var floats = 535_818
    @Option(parsing: .unconditional, help: "Timed calls (after 3 warm-up calls).") var repeats = 20
    @Option(name: .customLong("bucket-mb"), parsing: .unconditional, help: "Gradient MiB per allreduce (default 25).")
    var bucketMB: Double = 25

    func validate() throws {
        try checkingValues {
            try ValueCheck.atLeast(1, floats, name: "--floats")
            try ValueCheck.atLeast(1, repeats, name: "--repeats")
        }
        guard bucketMB > 0, bucketMB.isFinite else { throw ValidationError("--bucket-mb must be a finite number > 0, got \(bucketMB)") }
    }

    func run() throws {
        let ddp = try DistributedDataParallel(bucketBytes: Int(bucketMB * 1_048_576))
        let device = try Device.make(self.device.device.map { try MPILaunch.deviceSpec(parsing: $0) } ?? DeviceSpec.fromEnvironment())
        let parameter = Tensor.zeros([floats], on: device)
        parameter.requiresGrad = true
        try (parameter.sum() * 0).backward()   // a gradient of zeros, made by autograd as in training
        for _ in 0..<3 { try ddp.reduceGradients(of: [parameter], weight: 0.5) }
        try ddp.barrier()
        ddp.resetCounters()
        let start = Date()
        for _ in 0..<repeats { try ddp.reduceGradients(of: [parameter], weight: 0.5) }
        let ms = Date().timeIntervalSince(start) / Double(repeats) * 1000
        guard ddp.isMainRank else { return }
        print(String(format: "myelin allreduce alone: %d ranks, %@, %.2f MB in %.2f ms per call, %.2f ms of it in MPI_Allreduce",
                     ddp.worldSize, device.name, Double(4 * floats) / 1e6, ms, ddp.communicationSeconds / Double(repeats) * 1000))
    }
}
