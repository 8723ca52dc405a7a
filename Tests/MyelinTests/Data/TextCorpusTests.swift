import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The character-level corpus of `myelin train text`: vocabulary, split, batches, and the files it refuses.
struct TextCorpusTests {
    @Test func vocabularyIsTheSortedCharacters() throws {
        let corpus = try TextCorpus(text: "hello, world\n")
        #expect(corpus.vocabulary.characters.map { String($0) }.joined() == "\n ,dehlorw")
        #expect(corpus.vocabulary.decode(corpus.tokens) == "hello, world\n")
        #expect(try CharacterVocabulary(json: corpus.vocabulary.json()) == corpus.vocabulary)
        let (train, validation) = corpus.split(validationFraction: 0.1)
        #expect(train.count == 12 && validation.count == 1)
        expectDataError({ _ = try corpus.vocabulary.encode("held!", source: "prompt") }, contains: ["prompt", "\"!\"", "position 4"])
        expectDataError({ _ = try CharacterVocabulary(json: #"["ab"]"#) }, contains: ["not one character"])
    }

    @Test func batchesAreWindowsAndTheirNextTokens() throws {
        let tokens = Array(0..<50)
        var g = SeededGenerator(seed: 3)
        let (x, y) = try TextCorpus.batch(tokens, batchSize: 4, blockSize: 7, generator: &g, on: .cpu)
        #expect(x.shape == [4, 7] && y.shape == [4, 7])
        let xs = try x.toArray(), ys = try y.toArray()
        for i in 0..<28 { #expect(ys[i] == xs[i] + 1) }
        for row in 0..<4 { #expect(xs[row * 7 + 6] == xs[row * 7] + 6) }
        expectDataError({ _ = try TextCorpus.batch(Array(0..<7), batchSize: 1, blockSize: 7, generator: &g) },
                        contains: ["7", "at least 8"])
        // Batch sizes no machine holds, or whose element count overflows, are errors, not a trap or a crash.
        for batchSize in [1 << 40, Int.max / 2] {
            let text = errorText { _ = try TextCorpus.batch(tokens, batchSize: batchSize, blockSize: 7, generator: &g, on: .cpu) }
            #expect(text.hasPrefix("TextCorpus.batch: \(batchSize) windows of 7 tokens and their targets (on the host)"), "\(text)")
        }
        #expect(errorText { _ = try TextCorpus.batch(tokens, batchSize: 0, blockSize: 7, generator: &g) }.contains("batchSize"))
    }

    @Test func refusesEmptyBinaryNonUTF8AndOneCharacterTexts() throws {
        try inTemporaryFolder { dir in
            func file(_ name: String, _ bytes: [UInt8]) throws -> URL {
                let url = dir.appendingPathComponent(name)
                try Data(bytes).write(to: url)
                return url
            }
            expectDataError({ _ = try TextCorpus(contentsOf: file("empty.txt", [])) }, contains: ["empty.txt", "empty"])
            expectDataError({ _ = try TextCorpus(contentsOf: file("latin1.txt", Array("caf".utf8) + [0xE9, 0x0A])) },
                            contains: ["latin1.txt", "not UTF-8", "byte 3"])
            expectDataError({ _ = try TextCorpus(contentsOf: file("one.txt", Array("aaaa".utf8))) },
                            contains: ["one.txt", "one distinct character", "\"a\""])
            expectDataError({ _ = try TextCorpus(contentsOf: file("zeros.bin", [0x7F, 0x45, 0x4C, 0x46, 0, 0, 1])) },
                            contains: ["zeros.bin", "binary", "NUL byte at offset 4"])
            expectDataError({ _ = try TextCorpus(contentsOf: file("controls.bin", [1, 2, 3, 65, 66, 4, 5])) },
                            contains: ["controls.bin", "binary", "control characters"])
            expectDataError({ _ = try TextCorpus(contentsOf: dir.appendingPathComponent("missing.txt")) }, contains: ["missing.txt"])
            let ok = try TextCorpus(contentsOf: file("ok.txt", Array("Grüße\tam\r\nMorgen\n".utf8)))
            #expect(ok.vocabulary.decode(ok.tokens) == "Grüße\tam\r\nMorgen\n")
        }
    }
}
