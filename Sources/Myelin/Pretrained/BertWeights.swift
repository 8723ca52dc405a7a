import Foundation

// Reading a Hugging Face model.safetensors into a BERT encoder a chunk at a time: the header first (validated as
// `SafeTensors.load` validates it), every name and shape checked against the model before any data is read, then
// each tensor's bytes straight into its tensor. The process never holds the file's bytes or a second copy of the
// weights: all-MiniLM-L6-v2's 91 MB file took 182 MB while `SafeTensors.load` read it whole, and the allocator kept
// that memory, so it stayed in the peak of `myelin embed`.

extension BertEncoder {
    /// An encoder of `config`'s shape on `device` with the tensors of the safetensors file `url`, read strictly
    /// (every name of the model present with its shape, no other name but `embeddings.position_ids`, which must hold
    /// 0, 1, 2, ...; a pooler when the file has `pooler.*` tensors) in file order. Errors are `SafeTensors.load`'s
    /// and `Layer.loadState`'s, naming the file and the tensors. At most `chunkElements` values are read at a time.
    static func readWeights(_ url: URL, config: BertConfig, device: Device, chunkElements: Int = 1 << 20) throws -> BertEncoder {
        let source = url.path
        let file: ReadableFile
        do { file = try ReadableFile(url) } catch let e as FileError {
            throw CheckpointError.invalid(source, reason: "cannot read the file (\(e.reason))")
        }
        let layout = try readLayout(file, source: source)
        try LegacyCheckpoint.checkLayoutMarker(SafeTensorsFile(entries: [], metadata: layout.metadata), source: source)
        if let ids = layout.ranges.first(where: { $0.name == positionIDsName }),
           ids.shape.reduce(1, *) != config.maxPositions || ids.shape.last != config.maxPositions {
            throw positionIDsError(ids.shape, source: source, config: config)
        }
        let model = BertEncoder(config: config, pooler: layout.ranges.contains { $0.name.hasPrefix("pooler.") }, device: device)
        let own = Dictionary(model.namedTensors, uniquingKeysWith: { first, _ in first })
        if let error = StateMismatch(model: model.namedTensors, checkpoint: layout.ranges.map { ($0.name, $0.shape) },
                                     ignoring: { $0 == positionIDsName }).error(source: source, strict: true) {
            throw error
        }
        let chunk = UnsafeMutablePointer<Float>.allocate(capacity: chunkElements)
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkElements * 8, alignment: 16)
        defer { chunk.deallocate(); raw.deallocate() }
        for r in layout.ranges {
            let size = SafeTensors.elementSizes[r.dtype]!
            var done = 0, nonFinite = 0, first: (index: Int, value: Float)? = nil
            while done < r.count {
                let n = min(chunkElements, r.count - done)
                let bytes = UnsafeMutableRawBufferPointer(rebasing: raw[0..<(n * size)])
                guard try file.readFully(into: bytes) == bytes.count else {
                    throw CheckpointError.corrupt(source, reason: "the file ended while tensor '\(r.name)' was read (it changed while being read?)")
                }
                SafeTensors.convert(r.dtype, UnsafeRawBufferPointer(bytes), count: n, into: chunk)
                let values = UnsafeBufferPointer(start: chunk, count: n)
                if let t = own[r.name] {
                    for (i, v) in values.enumerated() where !v.isFinite {
                        nonFinite += 1
                        if first == nil { first = (done + i, v) }
                    }
                    t.upload(values, at: done)
                } else if !values.enumerated().allSatisfy({ Float(done + $0.offset) == $0.element }) {
                    throw positionIDsError(r.shape, source: source, config: config)
                }
                done += n
            }
            if let first {
                throw CheckpointError.nonFinite(source, name: r.name, count: nonFinite, index: first.index, value: first.value, saving: false)
            }
        }
        model.eval()
        return model
    }

    /// The header of `file`, read and checked as `SafeTensors.load` checks it (the file is then at its data area).
    private static func readLayout(_ file: ReadableFile, source: String) throws -> SafeTensorsLayout {
        var prefix = try file.read(count: min(8, file.size))
        if prefix.count == 8 {
            let length = SafeTensors.headerLength(prefix[...])
            // Past the limit or the end: `layout` throws its message without the header.
            if length <= UInt64(SafeTensors.maxHeaderLength), 8 + Int(length) <= file.size {
                prefix += try file.read(count: Int(length))
                guard prefix.count == 8 + Int(length) else {
                    throw CheckpointError.corrupt(source, reason: "the file ended inside its header (it changed while being read?)")
                }
            }
        }
        return try SafeTensors.layout(prefix: prefix[...], fileSize: file.size, source: source)
    }

    /// The error of an `embeddings.position_ids` buffer of `shape` that is not 0, 1, ..., maxPositions − 1.
    private static func positionIDsError(_ shape: [Int], source: String, config: BertConfig) -> PretrainedModelError {
        .mismatch(source, reason: "'\(positionIDsName)' \(shape) is not 0, 1, ..., \(config.maxPositions - 1) (max_position_embeddings of config.json)")
    }
}
