import Foundation
import Numerics
import Testing
@testable import MyelinCore
@testable import Myelin

/// The repository's top folder (for Data/, Kernels/, scripts/, Fuzz/, the README and the DocC articles), from this
/// file's place in the source tree: Tests/MyelinTests/Support/TestSupport.swift.
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()   // Support
    .deletingLastPathComponent()   // MyelinTests
    .deletingLastPathComponent()   // Tests
    .deletingLastPathComponent()

/// The devices every parameterized test runs on: the CPU, and the first OpenCL device when one exists.
enum TestDevices {
    static let openCLAvailable = !OpenCLPlatforms.devices().isEmpty
    static let all: [Device] = [.cpu] + (openCLAvailable ? [try! Device.make(.opencl(index: 0))] : [])
    static var openCL: Device { try! Device.make(.opencl(index: 0)) }
    static let skipReason: Comment = "no OpenCL platform on this machine (install pocl-opencl-icd to run the OpenCL suite)"
}

/// Checks `actual` against `expected` elementwise: |a - e| <= atol + rtol·|e|. NaN or infinity where a finite
/// value is expected is a failure.
func expectClose(_ actual: [Float], _ expected: [Double], rtol: Double = 1e-4, atol: Double = 1e-5,
                 _ what: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(what()): \(actual.count) values, expected \(expected.count)",
            sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    var failures = 0
    for i in 0..<actual.count {
        let a = Double(actual[i]), e = expected[i]
        let ok: Bool
        if e.isNaN { ok = a.isNaN } else if e.isInfinite { ok = a == e } else {
            ok = a.isFinite && a.isApproximatelyEqual(to: e, absoluteTolerance: atol + rtol * Swift.abs(e), relativeTolerance: 0)
        }
        if !ok {
            failures += 1
            if failures <= 5 {
                Issue.record("\(what()): element \(i) is \(a), expected \(e) (rtol \(rtol), atol \(atol))",
                             sourceLocation: sourceLocation)
            }
        }
    }
    if failures > 5 { Issue.record("\(what()): \(failures) elements differ in all", sourceLocation: sourceLocation) }
}

func expectClose(_ actual: [Float], _ expected: [Float], rtol: Double = 1e-4, atol: Double = 1e-5,
                 _ what: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    expectClose(actual, expected.map(Double.init), rtol: rtol, atol: atol, what(), sourceLocation: sourceLocation)
}

/// Deterministic test data in [-1, 1).
func testValues(_ count: Int, seed: UInt64) -> [Float] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { _ in Float(g.nextDouble() * 2 - 1) }
}

/// Naive references in Double.
enum Reference {
    /// C[m, n] = op(A)·op(B) with row-major A, B.
    static func gemm(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transA ? a[p * m + i] : a[i * k + p]
                    let bv = transB ? b[j * k + p] : b[p * n + j]
                    s += Double(av) * Double(bv)
                }
                c[i * n + j] = s
            }
        }
        return c
    }
}
