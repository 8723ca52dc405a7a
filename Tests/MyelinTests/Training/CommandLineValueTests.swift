import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The values the `myelin` command reads (layer sizes, learning rates, counts) are checked by `ValueCheck`, with the
/// option's name and the rule in the error.
@Suite struct CommandLineValueTests {
    @Test func layerSizesNameTheBadItem() throws {
        #expect(try ValueCheck.layerSizes("512,256") == [512, 256])
        #expect(try ValueCheck.layerSizes(" 64 , 32 ") == [64, 32])
        for (text, expected) in [("64,abc", "'abc' is not one"), ("64,,32", "empty size"), ("64,", "empty size"),
                                 ("0", "0 is not"), ("-5,3", "-5 is not"), ("", "needs sizes like 512,256"),
                                 ("99999999999999999999", "is not one")] {
            do {
                _ = try ValueCheck.layerSizes(text)
                Issue.record("'\(text)' accepted")
            } catch {
                #expect("\(error)".hasPrefix("--hidden "), "\(error)")
                #expect("\(error)".contains(expected), "'\(error)' does not say '\(expected)'")
            }
        }
    }

    @Test func numbersAreCheckedWithTheirNames() {
        #expect(throws: Never.self) { try ValueCheck.learningRate(0.01, name: "--lr") }
        #expect(throws: Never.self) { try ValueCheck.learningRate(0, name: "--lr") }
        for bad: Float in [-1, .nan, .infinity] {
            do {
                try ValueCheck.learningRate(bad, name: "--lr")
                Issue.record("--lr \(bad) accepted")
            } catch {
                #expect("\(error)" == "--lr must be a finite number >= 0, got \(String(format: "%g", Double(bad)))")
            }
        }
        do {
            try ValueCheck.learningRate(-1, name: "--lr")
        } catch {
            #expect("\(error)" == "--lr must be a finite number >= 0, got -1")
        }
        #expect(throws: Never.self) { try ValueCheck.atLeast(1, 3, name: "--runs") }
        do {
            try ValueCheck.atLeast(1, 0, name: "--runs")
            Issue.record("--runs 0 accepted")
        } catch {
            #expect("\(error)" == "--runs must be at least 1, got 0")
        }
    }
}
