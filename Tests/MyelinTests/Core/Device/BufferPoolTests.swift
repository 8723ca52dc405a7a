import Testing
@testable import MyelinCore

/// The size-class pool both backends keep their free memory in.
@Suite struct BufferPoolTests {
    @Test func sizeClassesArePowersOfTwoThenEighths() {
        let cases: [(Int, Int)] = [(0, 1), (1, 1), (2, 2), (3, 4), (7, 8), (33, 64), (4096, 4096),
                                   (4097, 4608), (5000, 5120), (8192, 8192), (8193, 9216), (1_000_000, 1_048_576)]
        for (count, expected) in cases {
            #expect(BufferPool<Int>.sizeClass(count) == expected, "size class of \(count)")
        }
        // Never smaller than asked, at most 12.5% (or a power of two below 4096) larger.
        for count in [4097, 6000, 12_345, 99_999, 1 << 20 | 1] {
            let size = BufferPool<Int>.sizeClass(count)
            #expect(size >= count && Double(size) <= Double(count) * 1.125 + 1, "\(count) -> \(size)")
        }
    }

    @Test func takesBackWhatWasReleasedOfTheSameClassOnly() {
        let pool = BufferPool<Int>()
        #expect(pool.take(size: 64) == nil)
        pool.release(1, size: 64)
        pool.release(2, size: 64)
        pool.release(3, size: 4608)
        #expect(pool.take(size: 128) == nil)
        #expect(pool.take(size: 5120) == nil)
        #expect(pool.take(size: 64) == 2)   // last in, first out
        #expect(pool.take(size: 4608) == 3)
        pool.release(4, size: 1)
        #expect(Set(pool.removeAll()) == [1, 4])
        #expect(pool.take(size: 64) == nil && pool.take(size: 1) == nil)
    }

    /// A request whose class is empty takes the smallest free class in (size, 2·size] above 4096 elements, and
    /// nothing larger or smaller.
    @Test func takesTheSmallestLargerClassUpToTwice() {
        let pool = BufferPool<Int>()
        #expect(pool.takeLarger(than: 8192) == nil)
        pool.release(1, size: 20480)   // more than twice 9216
        pool.release(2, size: 16384)
        pool.release(3, size: 12288)
        pool.release(4, size: 4608)
        #expect(pool.takeLarger(than: 9216).map { [$0.handle, $0.size] } == [3, 12288])
        #expect(pool.takeLarger(than: 9216).map { [$0.handle, $0.size] } == [2, 16384])
        #expect(pool.takeLarger(than: 9216) == nil, "20480 is more than twice 9216")
        #expect(pool.takeLarger(than: 4096) == nil, "classes up to 4096 take their own class only")
        #expect(pool.pooledElements == 20480 + 4608)
        #expect(Set(pool.removeAll()) == [1, 4])
    }

    /// CPU tensors of shrinking sizes, each freed before the next is made, live in the first one's buffer.
    @Test func shrinkingTensorsReuseTheFirstBuffer() throws {
        let backend = CPUBackend.makePrivate()
        _ = backend.allocate(40_000)
        let made = backend.stats.allocations
        for count in stride(from: 39_000, through: 20_001, by: -1_000) { _ = backend.allocate(count) }
        #expect(made == 1 && backend.stats.allocations == made, "shrinking requests allocated anew: \(backend.stats.allocations)")
    }
}
