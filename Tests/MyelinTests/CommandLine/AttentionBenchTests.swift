import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `myelin bench attention`: a row per sequence length with both paths' times, and option errors naming the option.
@Suite(.enabled(if: MyelinCommandLine.isBuilt, MyelinCommandLine.skipReason))
struct AttentionBenchTests {
    @Test func printsARowPerLengthAndNamesBadSizes() throws {
        let r = try MyelinCommandLine.run(["bench", "attention", "--device", "cpu", "--lengths", "3,5", "--shape", "1,2,4",
                                           "--runs", "1", "--no-causal"])
        #expect(r.status == 0, "\(r.all)")
        #expect(r.output.contains("Attention B=1 H=2 D=4:"), "\(r.output)")
        let rows = r.output.split(separator: "\n").map { $0.split(separator: " ") }.filter { ["3", "5"].contains($0.first) }
        #expect(rows.count == 2 && rows.allSatisfy { $0.count == 9 && $0.dropFirst().allSatisfy { Double($0) != nil } },
                "\(r.output)")
        let bad = try MyelinCommandLine.run(["bench", "attention", "--shape", "4,4"])
        #expect(bad.status == 64 && bad.errors.contains("--shape must be 3 positive whole numbers separated by commas, got '4,4'"),
                "\(bad.all)")
        let lengths = try MyelinCommandLine.run(["bench", "attention", "--lengths", "64,0"])
        #expect(lengths.status == 64 && lengths.errors.contains("--lengths must be positive whole numbers"), "\(lengths.all)")
    }
}
