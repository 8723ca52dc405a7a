import Foundation

extension CheckpointError {
    /// For a file whose tensors disagree with the sizes a configuration gives them (a BERT folder's config.json, a
    /// GPT checkpoint's `gpt_config`): a `.shapeMismatch` or `.keysMismatch` said as that, naming the file, the
    /// configuration and its sizes, then the tensors (without the advice to load with `strict: false`, which
    /// cannot help: the model is built from the configuration). Other errors are returned as they are.
    func disagreeing(with configuration: String) -> any Error {
        let file: String
        switch self {
        case .shapeMismatch(let f, _, _, _), .keysMismatch(let f, _, _): file = f
        default: return self
        }
        var detail = description.replacingOccurrences(of: SwiftAPIAdvice.loadNotStrict, with: "")
        if detail.hasPrefix(file + ": ") { detail.removeFirst(file.count + 2) }
        return CheckpointError.invalid(file, reason: "its tensors disagree with \(configuration): \(detail)")
    }
}
