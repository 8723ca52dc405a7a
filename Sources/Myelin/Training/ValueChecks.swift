import Foundation

/// The rules numbers from a command line or a checkpoint must follow, in one place: the `myelin` command's
/// options and `TrainingCheckpoint.load` use the same checks, so a value a command line refuses is refused in a
/// checkpoint too. Each throws an `InvalidValueError` naming the value (`--lr must be a finite number >= 0, got -1`).
///
/// ```swift
/// let sizes = try ValueCheck.layerSizes("512,256")        // [512, 256]
/// try ValueCheck.layerSizes("64,abc")                       // throws: --hidden: 'abc' is not a whole number
/// try ValueCheck.learningRate(-1, name: "--lr")             // throws
/// ```
public enum ValueCheck {
    /// A learning rate: finite and >= 0 (the rule every optimizer applies).
    public static func learningRate(_ value: Float, name: String) throws {
        guard value.isFinite, value >= 0 else {
            throw InvalidValueError(name: name, value: String(format: "%g", Double(value)), rule: "must be a finite number >= 0")
        }
    }

    /// A count that must be at least `minimum` (epochs, steps, runs, sizes: 1; a warm-up: 0).
    public static func atLeast(_ minimum: Int, _ value: Int, name: String) throws {
        guard value >= minimum else {
            throw InvalidValueError(name: name, value: "\(value)", rule: "must be at least \(minimum)")
        }
    }

    /// Comma-separated layer sizes such as `512,256`: each a whole number >= 1, blanks around them ignored. An
    /// empty item or one that is not a number is an error naming it, never skipped.
    public static func layerSizes(_ text: String, name: String = "--hidden") throws -> [Int] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard !(items.count == 1 && items[0].isEmpty) else {
            throw InvalidValueError(name: name, value: "'\(text)'", rule: "needs sizes like 512,256")
        }
        return try items.map { item in
            guard !item.isEmpty else {
                throw InvalidValueError(name: name, value: "'\(text)'", rule: "has an empty size (two commas, or one at an end)")
            }
            guard let n = Int(item) else {
                throw InvalidValueError(name: name, value: "'\(text)'", rule: "needs whole numbers; '\(item)' is not one")
            }
            guard n >= 1 else {
                throw InvalidValueError(name: name, value: "'\(text)'", rule: "needs sizes of at least 1; \(n) is not")
            }
            return n
        }
    }
}
