import Foundation
import Testing
@testable import MyelinCore

/// A request for more memory than the device (or this process) can have is a thrown error naming the request, never
/// a stop of the program (issue 28, item 3): tensors made from a shape, and every op that throws, whose result can be
/// larger than its inputs; a host allocation the system refuses comes back as nil to the throwing paths.
@Suite struct ThrownAllocationTests {
    @Test(arguments: TestDevices.all)
    func aTensorNoDeviceHoldsIsAThrownError(device: Device) throws {
        let text = errorText { _ = try Tensor(shape: [1 << 40], on: device) }
        #expect(text.hasPrefix("Tensor(shape:repeating:): a result of shape [1099511627776] needs 4.0 TiB, the device \(device.name) has "),
                "\(text)")
        #expect(errorText { _ = try Tensor(shape: [3, -1], on: device) }.contains("has a negative size"))
        #expect(errorText { _ = try Tensor(shape: [1 << 62, 8], on: device) }.contains("more elements than a 64-bit count can hold"))
        #expect(try Tensor(shape: [2, 3], repeating: 1.5, on: device).toArray() == [Float](repeating: 1.5, count: 6))
        #expect(try Tensor(shape: [0, 4], on: device).count == 0)
    }

    @Test(arguments: TestDevices.all)
    func opsWhoseResultNoDeviceHoldsThrowNamingTheOp(device: Device) throws {
        let n = 1 << 20
        let column = try Tensor(shape: [n, 1], repeating: 1, on: device), row = try Tensor(shape: [1, n], repeating: 1, on: device)
        let table = try Tensor(shape: [2, n], repeating: 1, on: device), indices = try Tensor(shape: [n], on: device)
        let huge = "a result of shape [\(n), \(n)] needs 4.0 TiB"
        let cases: [(String, () throws -> Tensor)] = [
            ("matmul of [\(n), 1] and [1, \(n)]: \(huge)", { try column.matmul(row) }),
            ("add of [\(n), 1] and [1, \(n)]: \(huge)", { try column + row }),
            ("broadcast of [\(n), 1] to [\(n), \(n)]: \(huge)", { try column.broadcast(to: [n, n]) }),
            ("gather of [\(n)] rows of [2, \(n)]: \(huge)", { try table.gather(rows: indices) }),
            ("embedding of [\(n)] indices in [2, \(n)]: \(huge)", { try table.embedding(indices) }),
            ("oneHot(classes: 1099511627776) of [2]: a result of shape [2, 1099511627776] needs 8.0 TiB",
             { try Tensor([0, 1], on: device).oneHot(classes: 1 << 40) }),
        ]
        for (expected, op) in cases {
            let text = errorText { _ = try op() }
            #expect(text.hasPrefix(expected) && text.contains("the device \(device.name) has"), "\(text)")
        }
        // The device goes on working.
        #expect(try (column.slice(0..<2) + row.reshaped([n, 1]).slice(0..<2)).toArray() == [2, 2])
    }

    /// A host allocation the system refuses (here: more than the address space) is nil for the throwing paths, after
    /// the pool's free buffers are given back; and `tryAllocate` refuses invalid or oversized counts before asking.
    @Test func aHostAllocationTheSystemRefusesIsNilNotACrash() {
        let backend = CPUBackend.makePrivate()
        _ = backend.allocate(1000)   // pooled again when freed
        #expect(backend.hostBuffer(1 << 58) == nil)
        #expect(backend.tryAllocate(1 << 58) == nil)
        #expect(backend.tryAllocate(-1) == nil && backend.tryAllocate(Int.max) == nil)
        #expect(backend.tryAllocate(1000)?.capacity == 1024)
    }
}
