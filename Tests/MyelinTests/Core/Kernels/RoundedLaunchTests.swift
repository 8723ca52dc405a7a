import Foundation
import Testing
@testable import MyelinCore

// Launches rounded up to whole work-groups, as on a GPU, checked on whatever OpenCL device is here (PoCL in CI).
// scripts/oclgrind-check does not run this file: Oclgrind is a GPU-type device, so StrictKernelTests already runs
// every kernel with rounded launches there.

@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct RoundedLaunchTests {
    /// With launches rounded up to whole work-groups, as on a GPU (the kernels' ROUNDED_GUARD returns past the
    /// end), every kernel still matches the CPU, and every launch that did not ask for a work-group size ran
    /// work-groups of a multiple of 32 items, or of the whole (short) dimension, along dimension 0.
    @Test func everyKernelMatchesTheCPUWithRoundedLaunches() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0], roundLaunches: true)
        #expect(backend.roundsLaunches)
        KernelExercise.check(backend)
        let adam = try #require(backend.lastLocalSize[KernelReference(.optimizers, "adam_step")])
        #expect(adam.count == 1 && adam[0] > 1, "adam_step ran work-groups of \(adam)")
        let file = try #require(backend.programFiles.first { $0.name == "optimizers.cl" })
        #expect(backend.programSource(file).hasPrefix("#define MYELIN_ROUNDED_LAUNCHES\n"))
        // A CPU-type device launches exactly unless told otherwise.
        let exact = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0], environment: [:])
        #expect(exact.roundsLaunches == OpenCLPlatforms.devices()[0].isGPU)
        let forced = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0],
                                       environment: ["MYELIN_ROUND_LAUNCHES": "1"])
        #expect(forced.roundsLaunches)
    }

    /// A rounded launch with more work-groups along dimension 1 or 2 than a GPU takes runs in pieces through the
    /// global offset: with the limit lowered to 2 work-groups, every kernel still matches the CPU.
    @Test func launchesBeyondTheHigherDimensionLimitRunInPieces() throws {
        let pieces = OpenCLBackend.pieces(size: [64, 5, 3], offset: [0, 0, 0], local: [32, 1, 1], maxGroups: 2)
        #expect(pieces.map(\.offset) == [[0, 0, 0], [0, 0, 2], [0, 2, 0], [0, 2, 2], [0, 4, 0], [0, 4, 2]])
        #expect(pieces.map(\.size) == [[64, 2, 2], [64, 2, 1], [64, 2, 2], [64, 2, 1], [64, 1, 2], [64, 1, 1]])
        #expect(OpenCLBackend.pieces(size: [7, 2], offset: [3, 4], local: [7, 1], maxGroups: 2).count == 1)
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0], roundLaunches: true)
        backend.maxGroupsAlongHigherDimensions = 2
        KernelExercise.check(backend)
    }
}
