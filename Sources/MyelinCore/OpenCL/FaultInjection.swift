import COpenCL
import Synchronization

/// Test-only fault injection for an OpenCL device (`OpenCLBackend.injectFailures`): the next enqueues (kernel
/// launches, writes, reads, copies) or buffer creations report a chosen status without reaching the driver, so
/// tests can show what a failed launch or an out-of-memory device does. Nothing is injected unless a test asks.
final class FaultInjection: Sendable {
    /// Where injected failures happen.
    enum Point { case enqueue, bufferCreation }

    private let enqueueFailures = Atomic<Int>(0)
    private let bufferFailures = Atomic<Int>(0)
    private let status = Atomic<Int32>(0)
    private let enqueueSkips = Atomic<Int>(0)

    /// The next `count` events at `point` fail with `status`; at `.enqueue`, after `skipped` enqueues went through.
    func inject(_ count: Int, status: cl_int, at point: Point, after skipped: Int = 0) {
        self.status.store(status, ordering: .relaxed)
        switch point {
        case .enqueue:
            enqueueSkips.store(skipped, ordering: .relaxed)
            enqueueFailures.store(count, ordering: .relaxed)
        case .bufferCreation: bufferFailures.store(count, ordering: .relaxed)
        }
    }

    /// Whether this enqueue is one of those let through before the failures start (one is used).
    @inline(__always)
    func skipOne() -> Bool {
        guard enqueueSkips.load(ordering: .relaxed) > 0 else { return false }
        enqueueSkips.subtract(1, ordering: .relaxed)
        return true
    }

    /// The injected status when `point` still has failures to give (one is used), else nil.
    @inline(__always)
    func take(_ point: Point) -> cl_int? {
        point == .enqueue ? take(from: enqueueFailures) : take(from: bufferFailures)
    }

    @inline(__always)
    private func take(from counter: borrowing Atomic<Int>) -> cl_int? {
        var left = counter.load(ordering: .relaxed)
        while left > 0 {
            let (done, original) = counter.compareExchange(expected: left, desired: left - 1, ordering: .relaxed)
            if done { return status.load(ordering: .relaxed) }
            left = original
        }
        return nil
    }
}

extension OpenCLBackend {
    /// Where `injectFailures` makes commands fail.
    typealias FaultPoint = FaultInjection.Point

    /// For tests only: the next `count` enqueues (kernel launches, writes, reads, copies) or buffer creations
    /// report `status` without reaching the driver; with `skipped`, the enqueues fail after that many have gone
    /// through.
    func injectFailures(_ count: Int, status: cl_int, at point: FaultPoint, after skipped: Int = 0) {
        faults.inject(count, status: status, at: point, after: skipped)
    }
}
