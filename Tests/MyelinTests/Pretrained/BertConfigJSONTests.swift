import Foundation
import Testing
@testable import Myelin

/// config.json's numbers and Booleans kept apart (found by the `bertconfig` fuzzer's seeds: on Linux the JSON
/// numbers 0 and 1 cast to Bool, so `"num_hidden_layers": 1` was refused as a Boolean).
@Suite struct BertConfigJSONTests {
    static let fields = #""hidden_act":"gelu","hidden_size":8,"num_attention_heads":2,"intermediate_size":16,"layer_norm_eps":1e-5,"max_position_embeddings":4,"vocab_size":10"#

    func read(_ json: String) throws -> BertConfig {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("myelin-bertconfig-\(UUID().uuidString).json")
        try json.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        return try BertConfig(contentsOf: url)
    }

    @Test func oneLayerAndOneTokenTypeAreAccepted() throws {
        let config = try read("{\(Self.fields),\"num_hidden_layers\":1,\"type_vocab_size\":1}")
        #expect(config.layers == 1 && config.typeVocabularySize == 1 && config.heads == 2)
    }

    @Test func booleansAreNotNumbersAndNumbersAreNotBooleans() throws {
        #expect(throws: PretrainedModelError.self) { try read("{\(Self.fields),\"num_hidden_layers\":true,\"type_vocab_size\":1}") }
        let path = "/x/1_Pooling/config.json"
        let numbers = JSONConfigFile(path: path, object: ["a": NSNumber(value: 1), "b": NSNumber(value: 0)])
        #expect(throws: PretrainedModelError.invalidConfig(path, reason: "'a' is 1, expected true or false")) {
            try numbers.bool("a", default: false)
        }
        #expect(throws: PretrainedModelError.self) { try numbers.bool("b", default: true) }
        let parsed = try JSONSerialization.jsonObject(with: Data(#"{"t": true, "f": false, "one": 1}"#.utf8)) as! [String: Any]
        let file = JSONConfigFile(path: path, object: parsed)
        #expect(try file.bool("t", default: false) == true)
        #expect(try file.bool("f", default: true) == false)
        #expect(try file.int("one") == 1)
        #expect(throws: PretrainedModelError.self) { try file.int("t") }
    }

    /// Found by the `bertconfig` fuzzer (Regressions/bertconfig/epsilon-beyond-float): a `layer_norm_eps` finite as
    /// a Double but beyond Float was accepted as an infinite epsilon. Now refused, as one below Float's range is.
    @Test func epsilonsOutsideFloatAreRefused() throws {
        let fields = Self.fields.replacingOccurrences(of: #""layer_norm_eps":1e-5"#, with: #""layer_norm_eps":1e300"#)
        #expect(throws: PretrainedModelError.self) { try read("{\(fields),\"num_hidden_layers\":1,\"type_vocab_size\":1}") }
        do { _ = try read("{\(fields),\"num_hidden_layers\":1,\"type_vocab_size\":1}") } catch {
            #expect("\(error)".contains("'layer_norm_eps' is 1e+300, above Float's range"), "\(error)")
        }
        let tiny = Self.fields.replacingOccurrences(of: #""layer_norm_eps":1e-5"#, with: #""layer_norm_eps":1e-300"#)
        #expect(throws: PretrainedModelError.self) { try read("{\(tiny),\"num_hidden_layers\":1,\"type_vocab_size\":1}") }
    }
}
