import Foundation

// Fine-tuning a SentenceEncoder as sentence-transformers does: pairs (anchor, positive), MultipleNegativesRankingLoss
// over batches without duplicate texts, a retrieval evaluation, freezing the lower layers, and saving the folder.

/// A pair of texts that belong together (a question and its answer, a message and its intent, two paraphrases):
/// sentence-transformers' `InputExample(texts: [anchor, positive])`.
public struct SentencePair: Equatable, Sendable {
    /// The first text (the query side).
    public var anchor: String
    /// The text the anchor must be closest to.
    public var positive: String

    /// The pair of `anchor` and `positive`.
    public init(anchor: String, positive: String) {
        self.anchor = anchor
        self.positive = positive
    }

    /// The pairs of a tab-separated file, one `anchor<TAB>positive` a line (blank lines skipped). Throws naming the
    /// file and the line that does not hold two non-empty texts.
    public static func read(tsv url: URL) throws -> [SentencePair] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw PretrainedModelError.missingFile(url.path, what: "sentence pairs, one 'anchor<TAB>positive' a line, as UTF-8 text")
        }
        var pairs: [SentencePair] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            guard fields.count == 2, !fields[0].isEmpty, !fields[1].isEmpty else {
                throw PretrainedModelError.invalidConfig(url.path, reason: "line \(number + 1) is not 'anchor<TAB>positive' (two non-empty texts separated by one tab): '\(trimmed.prefix(80))'")
            }
            pairs.append(SentencePair(anchor: fields[0], positive: fields[1]))
        }
        guard !pairs.isEmpty else { throw PretrainedModelError.invalidConfig(url.path, reason: "holds no sentence pair") }
        return pairs
    }

    /// `pairs` shuffled with `seed` and cut into batches of at most `size` in which no text appears twice
    /// (sentence-transformers' `NoDuplicatesBatchSampler`: a repeated positive would be a false negative of the
    /// ranking loss). A pair that does not fit a batch waits for the next one.
    public static func batches(_ pairs: [SentencePair], size: Int, seed: UInt64) -> [[SentencePair]] {
        var generator = SeededGenerator(seed: seed)
        var waiting = pairs.shuffled(using: &generator), out: [[SentencePair]] = []
        while !waiting.isEmpty {
            var batch: [SentencePair] = [], texts = Set<String>(), rest: [SentencePair] = []
            for pair in waiting {
                if batch.count < max(size, 1), !texts.contains(pair.anchor), !texts.contains(pair.positive) {
                    batch.append(pair)
                    texts.formUnion([pair.anchor, pair.positive])
                } else {
                    rest.append(pair)
                }
            }
            out.append(batch)
            waiting = rest
        }
        return out
    }
}

/// How well queries find their text among candidates (sentence-transformers' `InformationRetrievalEvaluator`
/// with one relevant text per query): accuracy@1 and the mean reciprocal rank.
public struct RetrievalScores: Equatable, Sendable {
    /// The share of queries whose own text is the most similar candidate.
    public var accuracyAt1: Double
    /// The mean over the queries of 1 / (the rank of its own text among the candidates, 1 = first).
    public var meanReciprocalRank: Double
    /// How many queries were ranked.
    public var queries: Int
}

extension SentenceEncoder {
    /// Ranks, for each pair, every distinct positive of `pairs` by cosine similarity with its anchor, and scores
    /// where the pair's own positive lands (ties count against it). Runs without gradients.
    public func retrievalScores(_ pairs: [SentencePair], batchSize: Int = 32) throws -> RetrievalScores {
        guard !pairs.isEmpty else { return RetrievalScores(accuracyAt1: 0, meanReciprocalRank: 0, queries: 0) }
        var candidates: [String] = [], index: [String: Int] = [:]
        for p in pairs where index[p.positive] == nil {
            index[p.positive] = candidates.count
            candidates.append(p.positive)
        }
        let scores = try encode(pairs.map(\.anchor), batchSize: batchSize)
            .matmul(encode(candidates, batchSize: batchSize), transposeB: true).toArray2D()
        var top = 0, reciprocal = 0.0
        for (row, pair) in zip(scores, pairs) {
            let own = row[index[pair.positive]!]
            let rank = 1 + row.enumerated().filter { $0.offset != index[pair.positive]! && $0.element >= own }.count
            if rank == 1 { top += 1 }
            reciprocal += 1 / Double(rank)
        }
        return RetrievalScores(accuracyAt1: Double(top) / Double(pairs.count),
                               meanReciprocalRank: reciprocal / Double(pairs.count), queries: pairs.count)
    }

    /// One training step of `MultipleNegativesRankingLoss` on `batch` (each anchor must pick its own positive among
    /// the batch's): the loss's gradient through the whole encoder, then `optimizer.step()`. Returns the loss.
    @discardableResult
    public func trainStep(_ batch: [SentencePair], optimizer: any Optimizer, scale: Float = 20) throws -> Float {
        optimizer.zeroGrad()
        let loss = try multipleNegativesRankingLoss(anchors: embed(tokenizer.encode(batch: batch.map(\.anchor))),
                                                    positives: embed(tokenizer.encode(batch: batch.map(\.positive))),
                                                    scale: scale)
        try loss.backward()
        try optimizer.step()
        return try loss.item()
    }

    /// Writes the model as a sentence-transformers folder that `SentenceEncoder(directory:)`,
    /// `myelin embed --model` and sentence-transformers' `SentenceTransformer(path)` load: the configuration and
    /// vocabulary files (`*.json`, `*.txt`) of this model's folder and of its module subfolders copied, and the
    /// current weights as model.safetensors under Hugging Face's names (each file written atomically). Other
    /// weight files of the source folder (pytorch_model.bin, onnx/) are not copied: they would be stale.
    public func save(to folder: URL) throws {
        let files = FileManager.default
        try files.createDirectory(at: folder, withIntermediateDirectories: true)
        func copyConfigs(_ from: URL, _ to: URL) throws {
            let items = (try? files.contentsOfDirectory(at: from, includingPropertiesForKeys: [.isDirectoryKey])) ?? []
            for item in items {
                let target = to.appendingPathComponent(item.lastPathComponent)
                if (try? item.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true {
                    if to == folder, !item.lastPathComponent.hasPrefix(".") {
                        try files.createDirectory(at: target, withIntermediateDirectories: true)
                        try copyConfigs(item, target)
                    }
                } else if ["json", "txt"].contains(item.pathExtension) {
                    try AtomicFile.write(Data(contentsOf: item), to: target)
                }
            }
        }
        if folder.standardizedFileURL != directory.standardizedFileURL { try copyConfigs(directory, folder) }
        try SafeTensors.save(model.namedTensors, metadata: ["format": "pt"], to: folder.appendingPathComponent("model.safetensors"))
    }
}

extension BertEncoder {
    /// Freezes the token, position and token-type embeddings and their layer norm (if `embeddings`) and the first
    /// `layers` transformer layers: `requiresGrad = false` on each of their tensors, so they get no gradient and
    /// drop out of `parameters` (build the optimizer after freezing). Fine-tuning then changes only the layers above.
    ///
    /// ```swift
    /// model.model.freeze(embeddings: true, layers: 3)
    /// let optimizer = try AdamW(parameters: model.model.parameters, learningRate: 2e-5)
    /// ```
    public func freeze(embeddings: Bool = true, layers count: Int) {
        let prefixes = (embeddings ? ["embeddings."] : []) + (0..<min(max(count, 0), layers.count)).map { "encoder.layer.\($0)." }
        for (name, tensor) in namedTensors where prefixes.contains(where: name.hasPrefix) { tensor.requiresGrad = false }
    }
}
