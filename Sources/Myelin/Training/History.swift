import Foundation

/// Loss and metrics per epoch, as `fit` returns them: keys like Keras's (`loss`, `accuracy`, `val_loss`,
/// `val_accuracy`), one value per epoch.
///
/// ```swift
/// let history = try model.fit(train, epochs: 10, ...)
/// print(history["val_loss"]!)          // [0.52, 0.41, ...]
/// try history.csv().write(toFile: "history.csv", atomically: true, encoding: .utf8)
/// ```
public struct History: Equatable, Sendable {
    /// The metric names in the order they first appeared.
    public private(set) var keys: [String] = []
    /// The values of each metric, one per epoch.
    public private(set) var values: [String: [Double]] = [:]
    /// The epoch numbers (1-based) the rows belong to.
    public private(set) var epochs: [Int] = []

    /// An empty history (no epochs).
    public init() {}

    /// The values of one metric.
    public subscript(key: String) -> [Double]? { values[key] }

    /// The number of epochs recorded.
    public var count: Int { epochs.count }

    /// Adds one epoch's results; a metric missing from a row gets NaN there.
    public mutating func append(epoch: Int, _ row: [String: Double]) {
        for k in row.keys.sorted(by: History.order) where !keys.contains(k) {
            keys.append(k)
            values[k] = [Double](repeating: .nan, count: epochs.count)
        }
        epochs.append(epoch)
        for k in keys { values[k]!.append(row[k] ?? .nan) }
    }

    /// The history as CSV: a header `epoch,<keys>` and one line per epoch.
    public func csv() -> String {
        var lines = [(["epoch"] + keys).joined(separator: ",")]
        for (i, e) in epochs.enumerated() {
            lines.append(([String(e)] + keys.map { History.format(values[$0]![i]) }).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The history as JSON: `{"epoch": [...], "<key>": [...], ...}` (NaN as null; numbers round-trip exactly).
    public func json() -> String {
        var parts = ["\"epoch\":[\(epochs.map(String.init).joined(separator: ","))]"]
        for k in keys {
            parts.append("\(SafeTensors.jsonString(k)):[\(values[k]!.map { $0.isFinite ? "\($0)" : "null" }.joined(separator: ","))]")
        }
        return "{" + parts.joined(separator: ",") + "}\n"
    }

    /// Writes CSV, or JSON when the file name ends in `.json`, atomically.
    public func write(to url: URL) throws {
        let text = url.pathExtension.lowercased() == "json" ? json() : csv()
        try AtomicFile.write(Data(text.utf8), to: url)
    }

    static func format(_ v: Double) -> String { v.isNaN ? "nan" : String(format: "%.6g", v) }

    /// Keeps `loss` first, then other training metrics, then validation ones.
    static func order(_ a: String, _ b: String) -> Bool {
        func rank(_ k: String) -> Int { k == "loss" ? 0 : k == "val_loss" ? 2 : k.hasPrefix("val_") ? 3 : k == "lr" ? 4 : 1 }
        return (rank(a), a) < (rank(b), b)
    }
}
