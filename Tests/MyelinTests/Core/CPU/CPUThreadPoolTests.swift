import Foundation
import Synchronization
import Testing
@testable import MyelinCore

/// The CPU device's loops on its thread pool (`parallelFor` over `myelin_pool_run`, with GCD's `concurrentPerform`
/// where the pool is busy): every index visited exactly once, whatever the part count, when loops nest, and when
/// several threads start loops at once.
@Suite struct CPUThreadPoolTests {
    /// Runs `parallelFor` over [0, n) in `parts` chunks and returns how many times each index was visited.
    static func visits(_ n: Int, parts: Int, backend: CPUBackend = .shared,
                       inner: ((Int) -> Void)? = nil) -> [Int] {
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: Swift.max(n, 1))
        counts.initialize(repeating: 0, count: Swift.max(n, 1))
        defer { counts.deallocate() }
        nonisolated(unsafe) let shared = counts
        backend.parallelFor(n, minimum: 1, parts: parts) { lo, hi in
            for i in lo..<hi {
                shared[i] += 1  // the chunks are disjoint: no two threads write one index
                inner?(i)
            }
        }
        return Array(UnsafeBufferPointer(start: counts, count: n))
    }

    @Test(arguments: [1, 2, 3, 5])
    func everyIndexOnceForAnyPartCount(parts: Int) {
        for n in [0, 1, 2, 7, 33, 129, 65_537, 200_003] {
            let seen = Self.visits(n, parts: parts)
            #expect(seen.count == n)
            #expect(seen.allSatisfy { $0 == 1 }, "n \(n), \(parts) parts: an index was visited \(seen.first { $0 != 1 } ?? 0) times")
        }
    }

    /// A loop inside a loop's chunk finds the pool busy (its own outer job) and runs on GCD instead: no deadlock,
    /// and both loops cover their ranges once.
    @Test func nestedLoopsFallBackAndCoverTheirRanges() {
        let innerTotal = Atomic<Int>(0)
        let outer = Self.visits(9, parts: 3) { _ in
            let inner = Self.visits(101, parts: 2)
            if inner.allSatisfy({ $0 == 1 }) { innerTotal.add(inner.count, ordering: .relaxed) }
        }
        #expect(outer.allSatisfy { $0 == 1 })
        #expect(innerTotal.load(ordering: .relaxed) == 9 * 101)
    }

    /// Four threads each start 200 loops at once: one holds the pool at a time, the others split their own work.
    @Test func concurrentCallersEachCoverTheirRange() {
        let good = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for round in 0..<200 {
                let n = 1_000 + 37 * t + round
                if Self.visits(n, parts: 2 + (round + t) % 3).allSatisfy({ $0 == 1 }) { good.add(1, ordering: .relaxed) }
            }
        }
        #expect(good.load(ordering: .relaxed) == 4 * 200)
    }

    /// The device's loops on the pool give the same values as on one thread: a unary op over an odd length.
    @Test func aDeviceLoopMatchesTheReference() throws {
        let values = testValues(200_003, seed: 7)
        let x = try Tensor(values, shape: [values.count], on: .cpu)
        let y = try x.relu().toArray()
        #expect(y == values.map { Swift.max($0, 0) })
    }
}
