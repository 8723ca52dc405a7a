import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Sizes counted before building (issue 28, items 2 and 3): the convnets' parameters counted exactly from their
/// options, a size no machine holds refused at once naming the option, and the memory a process may use bounded by
/// its cgroup and address-space limits as well as the host's free memory.
@Suite struct ModelMemoryTests {
    @Test func convNetCountsMatchTheBuiltModels() {
        for depth in [1, 2, 3] {
            let net = ConvNets.resnet(depth: depth, seed: 1, device: .cpu)
            let plan = ConvNets.resnetMemory(depth: depth, batchSize: 8, optimizerStateTensors: 1)
            #expect(plan.parameters == Double(net.parameterCount), "depth \(depth)")
            let all = net.namedTensors.reduce(0) { $0 + $1.1.count }
            #expect(plan.parameters + plan.buffers == Double(all), "depth \(depth): buffers")
            #expect(plan.model == "ResNet-\(6 * depth + 2)")
        }
        let cnn = ConvNets.fashionCNN(seed: 1, device: .cpu)
        let plan = ConvNets.fashionCNNMemory(batchSize: 8, optimizerStateTensors: 2)
        #expect(plan.parameters == Double(cnn.parameterCount))
        #expect(plan.parameters + plan.buffers == Double(cnn.namedTensors.reduce(0) { $0 + $1.1.count }))
        #expect(plan.trainingBytes > 4 * 4 * plan.parameters)
    }

    /// `--model resnet --depth 1000000000` is refused before anything is built, at once, naming the option; so is a
    /// depth whose layer count overflows an Int.
    @Test(arguments: TestDevices.all)
    func aHugeDepthIsRefusedAtOnceNamingTheOption(device: Device) throws {
        for depth in [1_000_000_000, Int.max] {
            let start = Date()
            let plan = ConvNets.resnetMemory(depth: depth, batchSize: 128, optimizerStateTensors: 1,
                                             options: "--depth \(depth) with --batch-size 128")
            do {
                try plan.check(on: device)
                Issue.record("depth \(depth) fits \(device)?")
            } catch let error as DeviceError {
                let text = "\(error)"
                #expect(text.hasPrefix("--depth \(depth) with --batch-size 128: training ResNet-"), "\(text)")
                #expect(text.contains("of memory available") && text.contains(device.name), "\(text)")
            }
            #expect(Date().timeIntervalSince(start) < 1, "the check took \(Date().timeIntervalSince(start)) s")
        }
        // A small model fits.
        try ConvNets.resnetMemory(depth: 1, batchSize: 8, optimizerStateTensors: 1).check(on: device)
        // A cnn batch no device holds names --batch-size.
        #expect(throws: DeviceError.self) {
            try ConvNets.fashionCNNMemory(batchSize: 1 << 40, optimizerStateTensors: 2).check(on: device)
        }
    }

    /// The memory a process may take is the smallest of the host's free memory, its cgroup's headroom and the
    /// address space left under `ulimit -v` (less a slack).
    @Test func hostMemoryIsTheSmallestOfEveryLimit() {
        let gib = 1 << 30
        let free = HostMemory.combine(physical: 64 * gib, free: 40 * gib, cgroup: (nil, nil), addressSpace: (nil, 0))
        #expect(free.total == 64 * gib && free.available == 40 * gib - 512 << 20)
        let group = HostMemory.combine(physical: 64 * gib, free: 40 * gib, cgroup: (8 * gib, 3 * gib), addressSpace: (nil, 0))
        #expect(group.total == 8 * gib && group.available == 5 * gib - 256 << 20)
        let space = HostMemory.combine(physical: 64 * gib, free: 40 * gib, cgroup: (8 * gib, 3 * gib),
                                       addressSpace: (4 * gib, 3 * gib))
        #expect(space.total == 4 * gib && space.available == gib - 128 << 20)
        let exhausted = HostMemory.combine(physical: 64 * gib, free: 40 * gib, cgroup: (nil, nil), addressSpace: (gib, 2 * gib))
        #expect(exhausted.available == 0)
        #expect(HostMemory.parseVirtualSize("Name:\tx\nVmPeak:\t  999 kB\nVmSize:\t  2048 kB\nVmRSS: 10 kB\n") == 2048 * 1024)
        // This process: unlimited here, or a limit above what it uses now.
        let now = HostMemory.addressSpace()
        if let limit = now.limit { #expect(limit >= now.used) } else { #expect(now.used == 0) }
    }
}
