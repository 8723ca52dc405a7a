import Foundation

/// A numeric table with named columns, read from CSV text with a header line.
///
/// ```swift
/// let table = try CSVTable.read(URL(fileURLWithPath: "Data/apartments.csv"))
/// let x = try table.columns(["size", "age"])   // row-major [rows, 2]
/// let y = try table.columns(["price"])
/// ```
public struct CSVTable: Equatable, Sendable {
    /// The column names from the header line.
    public let header: [String]
    /// The rows, each with `header.count` values.
    public let rows: [[Double]]
    /// Where the table came from (a file path or a name), for errors.
    public let source: String

    /// The number of rows (the header not counted).
    public var rowCount: Int { rows.count }

    /// Parses CSV text: a header line of names, then one line of numbers per row, separated by commas.
    /// Blank lines and lines starting with `#` are skipped; fields may be quoted and surrounded by blanks.
    /// A row with the wrong number of fields or a field that is not a number is an error naming the line. So is
    /// a NaN or infinite field, or one beyond Float's range (±3.4e38, where the table's values go), unless
    /// `nonFinite` replaces them.
    public init(parsing text: String, source: String, nonFinite: NonFiniteValues = .refuse) throws {
        try nonFinite.validate(source)
        self.source = source
        var header: [String]?
        var rows: [[Double]] = []
        var lineNumber = 0
        // "\r\n" is one Character in Swift, so split on every kind of line end.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            lineNumber += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = CSVTable.fields(of: line)
            guard let names = header else {
                let names = fields
                if let empty = names.firstIndex(of: "") {
                    throw DataError.csv(source, line: lineNumber, reason: "header column \(empty + 1) has no name")
                }
                if Set(names).count != names.count {
                    throw DataError.csv(source, line: lineNumber, reason: "header repeats a column name: \(names.joined(separator: ","))")
                }
                header = names
                continue
            }
            guard fields.count == names.count else {
                throw DataError.csv(source, line: lineNumber,
                                    reason: "\(fields.count) fields, expected \(names.count) (\(names.joined(separator: ",")))")
            }
            var row: [Double] = []
            row.reserveCapacity(fields.count)
            for (i, f) in fields.enumerated() {
                guard let v = Double(f) else {
                    throw DataError.csv(source, line: lineNumber, reason: "field \(i + 1) (\(names[i])) is not a number: \"\(f)\"")
                }
                guard v.isFinite, Float(v).isFinite else {
                    if case .replace(let r) = nonFinite { row.append(Double(r)); continue }
                    let why = v.isFinite ? "is beyond Float's range (±3.4e38)" : "is not a finite number"
                    throw DataError.csv(source, line: lineNumber, reason: "field \(i + 1) (\(names[i])) \(why): \"\(f)\" (read with nonFinite: .replace(with: 0) to replace such values)")
                }
                row.append(v)
            }
            rows.append(row)
        }
        guard let names = header else { throw DataError.csv(source, line: max(lineNumber, 1), reason: "no header line") }
        self.header = names
        self.rows = rows
    }

    /// Reads a CSV file (see `init(parsing:source:nonFinite:)`).
    public static func read(_ url: URL, nonFinite: NonFiniteValues = .refuse) throws -> CSVTable {
        let bytes = try IDX.readFile(url)
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw DataError.invalid(url.path, reason: "is not UTF-8 text")
        }
        return try CSVTable(parsing: text, source: url.path, nonFinite: nonFinite)
    }

    /// The index of a column by name.
    public func columnIndex(_ name: String) throws -> Int {
        guard let i = header.firstIndex(of: name) else {
            throw DataError.invalid(source, reason: "has no column '\(name)' (columns: \(header.joined(separator: ", ")))")
        }
        return i
    }

    /// The named columns as a row-major [rows, names.count] array of Float.
    public func columns(_ names: [String]) throws -> [Float] {
        let idx = try names.map(columnIndex)
        var out: [Float] = []
        out.reserveCapacity(rows.count * idx.count)
        for r in rows { for i in idx { out.append(Float(r[i])) } }
        return out
    }

    /// The named columns as a tensor [rows, names.count] on `device`.
    public func tensor(_ names: [String], on device: Device = .default) throws -> Tensor {
        try Tensor(columns(names), shape: [rows.count, names.count], on: device)
    }

    /// Splits a line at commas outside double quotes; fields are trimmed and unquoted.
    static func fields(of line: Substring) -> [String] {
        var out: [String] = []
        var current = ""
        var quoted = false
        var iterator = line.makeIterator()
        while let c = iterator.next() {
            if c == "\"" {
                quoted.toggle()
            } else if c == "," && !quoted {
                out.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(c)
            }
        }
        out.append(current.trimmingCharacters(in: .whitespaces))
        return out
    }
}
