import Synchronization

/// The free memory of one device, by size class: a buffer whose last reference goes away is put back here and
/// handed out again by the next allocation of its class, so a training loop stops allocating after its first
/// step. `Handle` is the device's memory (a host pointer for the CPU, a `cl_mem` for OpenCL). Thread-safe
/// (a futex-based mutex); the pool owns the handles it holds.
final class BufferPool<Handle>: Sendable {
    private let lists = Mutex(FreeLists())

    /// The size class of a request for `count` elements: powers of two up to 4096 elements, then multiples of
    /// 1/8 of the next power of two, so at most 12.5% is wasted.
    @inline(__always) static func sizeClass(_ count: Int) -> Int {
        let n = max(count, 1)
        if n <= 4096 { return 1 << (Int.bitWidth - (n - 1).leadingZeroBitCount) }
        let p = 1 << (Int.bitWidth - n.leadingZeroBitCount - 1)  // largest power of two <= n
        let step = p / 8
        return (n + step - 1) / step * step
    }

    /// A free buffer of the size class `size`, if one is pooled.
    @inline(__always) func take(size: Int) -> Handle? {
        lists.withLock { $0.take(size: size) }?.value
    }

    /// When the class `size` (above 4096 elements) has no free buffer: a free one of the smallest pooled class in
    /// (size, 2·size], and that class. Shapes that shrink step by step (sentence batches sorted longest first) then
    /// live in the buffers of their first step instead of filling one class after another (all-MiniLM-L6-v2 on 1000
    /// sentences held about 9 batches' worth); at most twice the memory is handed out for a request.
    func takeLarger(than size: Int) -> (handle: Handle, size: Int)? {
        guard size > 4096 else { return nil }
        return lists.withLock { lists -> (PooledHandle, Int)? in
            // A plain loop: the lazy filter/map with a key path instantiated a key path at run time on every
            // call (0.6% of a GPT training step on the CPU, which misses its class on every step).
            var best = Int.max
            for (key, list) in lists.large where key > size && key <= 2 * size && key < best && !list.isEmpty { best = key }
            guard best != Int.max, let handle = lists.take(size: best) else { return nil }
            return (handle, best)
        }.map { ($0.0.value, $0.1) }
    }

    /// Puts a free buffer of the size class `size` back.
    @inline(__always) func release(_ handle: Handle, size: Int) {
        let free = PooledHandle(handle)
        lists.withLock { $0.release(free, size: size) }
    }

    /// Empties the pool and returns everything it held (to free it: out of memory, or the device going away).
    func removeAll() -> [Handle] {
        lists.withLock { $0.removeAll() }.map(\.handle.value)
    }

    /// Empties the pool and returns everything it held with each buffer's size class (in elements).
    func removeAllWithSizes() -> [(handle: Handle, size: Int)] {
        lists.withLock { $0.removeAll() }.map { ($0.handle.value, $0.size) }
    }

    /// The elements held by the pooled buffers, all size classes together.
    var pooledElements: Int { lists.withLock { $0.pooledElements } }

    /// A handle held by the pool. It crosses the mutex unchecked: only the pool refers to it while it is free.
    private struct PooledHandle: @unchecked Sendable {
        let value: Handle
        init(_ value: Handle) { self.value = value }
    }

    /// The free lists behind the mutex.
    private struct FreeLists: ~Copyable {
        /// The power-of-two classes 1...4096, indexed by log2(size): no hashing on the hot path.
        var small = [[PooledHandle]](repeating: [], count: 13)
        /// Larger classes.
        var large: [Int: [PooledHandle]] = [:]
        /// The sum of the size classes of the pooled handles.
        var pooledElements = 0

        // On the hot path of every op: `isEmpty` + `removeLast()` inline where `popLast()` stays a call
        // in -O builds.
        @inline(__always) mutating func take(size: Int) -> PooledHandle? {
            if size <= 4096 {
                let i = size.trailingZeroBitCount
                if small[i].isEmpty { return nil }
                pooledElements -= size
                return small[i].removeLast()
            }
            guard let h = large[size]?.popLast() else { return nil }
            pooledElements -= size
            return h
        }

        @inline(__always) mutating func release(_ handle: PooledHandle, size: Int) {
            pooledElements += size
            if size <= 4096 { small[size.trailingZeroBitCount].append(handle) }
            else { large[size, default: []].append(handle) }
        }

        mutating func removeAll() -> [(handle: PooledHandle, size: Int)] {
            var all: [(handle: PooledHandle, size: Int)] = []
            for (i, list) in small.enumerated() { all += list.map { ($0, 1 << i) } }
            for (size, list) in large { all += list.map { ($0, size) } }
            small = [[PooledHandle]](repeating: [], count: 13)
            large = [:]
            pooledElements = 0
            return all
        }
    }
}
