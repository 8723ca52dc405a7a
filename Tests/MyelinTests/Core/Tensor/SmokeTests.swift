import Testing
@testable import MyelinCore
@testable import Myelin

@Suite struct SmokeTests {
    @Test(arguments: TestDevices.all)
    func gemmMatchesReference(device: Device) throws {
        for (m, n, k) in [(1, 1, 1), (7, 3, 33), (33, 129, 7), (64, 64, 64), (129, 33, 65)] {
            let a = testValues(m * k, seed: 1), b = testValues(k * n, seed: 2)
            let ta = try Tensor(a, shape: [m, k], on: device), tb = try Tensor(b, shape: [k, n], on: device)
            let c = try ta.matmul(tb)
            expectClose(try c.toArray(), Reference.gemm(a, b, m: m, n: n, k: k), rtol: 1e-4, atol: 1e-4, "\(device) gemm \(m)x\(n)x\(k)")
        }
    }
}
