import Foundation

// A GPT checkpoint: the weights (nanoGPT's keys), the configuration and the vocabulary in the metadata.

extension GPT {
    /// The metadata key of the configuration (JSON with nanoGPT's names).
    public static let configKey = "gpt_config"
    /// The metadata key of the vocabulary (`CharacterVocabulary.json()`).
    public static let vocabularyKey = "vocabulary"

    /// The metadata that makes a checkpoint of this model loadable by `GPT.load(from:)`.
    public func metadata(vocabulary: CharacterVocabulary) -> [String: String] {
        [GPT.configKey: config.json(), GPT.vocabularyKey: vocabulary.json()]
    }

    /// A GPT and its vocabulary from a file written with `metadata(vocabulary:)` (a training checkpoint of
    /// `myelin train text`, or `save(to:metadata:)`); optimizer state in it is ignored. Errors name the file and
    /// what is missing or wrong.
    ///
    /// ```swift
    /// let (gpt, vocabulary) = try GPT.load(from: URL(fileURLWithPath: "gpt.safetensors"))
    /// ```
    public static func load(from url: URL, device: Device = .default) throws -> (GPT, CharacterVocabulary) {
        let file = try SafeTensors.load(url)
        guard let configText = file.metadata[configKey], let vocabularyText = file.metadata[vocabularyKey] else {
            throw CheckpointError.invalid(url.path, reason: "is not a GPT checkpoint (its metadata has no '\(configKey)' and '\(vocabularyKey)'; write one with myelin train text --save)")
        }
        let config: GPTConfig, vocabulary: CharacterVocabulary
        do {
            config = try GPTConfig(json: configText)
            vocabulary = try CharacterVocabulary(json: vocabularyText)
        } catch {
            throw CheckpointError.invalid(url.path, reason: "has bad GPT metadata: \(error)")
        }
        guard vocabulary.count == config.vocabSize else {
            throw CheckpointError.invalid(url.path, reason: "has a vocabulary of \(vocabulary.count) characters but vocab_size \(config.vocabSize)")
        }
        // The exact parameters against the device before building (a configuration can claim any size).
        var plan = config.memory(batchSize: 1, optimizerStateTensors: 0, attentionScores: false,
                                 options: "\(url.path): its \(configKey) (n_layer \(config.layers), n_embd \(config.embedDim), "
                                    + "vocab_size \(config.vocabSize), block_size \(config.blockSize))")
        plan.training = false
        try plan.check(on: device)
        let gpt = GPT(config, seed: 0, device: device)
        do { try gpt.loadState(file, source: url.path) } catch let error as CheckpointError {
            throw error.disagreeing(with: "its metadata '\(configKey)' (n_layer \(config.layers), n_head \(config.heads), "
                                        + "n_embd \(config.embedDim), vocab_size \(config.vocabSize), block_size \(config.blockSize))")
        }
        return (gpt, vocabulary)
    }
}
