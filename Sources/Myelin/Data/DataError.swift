import Foundation

/// Errors from reading data files and building data sets. Each names the file (or source) and the problem;
/// CSV errors also name the line.
public enum DataError: Error, CustomStringConvertible, Equatable {
    /// The file does not exist or cannot be read.
    case missingFile(String, reason: String)
    /// An IDX file starts with the wrong magic number.
    case badMagic(String, found: String, expected: String)
    /// The file ends before the data its header announces.
    case truncated(String, expected: Int, got: Int)
    /// A gzip stream that zlib refuses (corrupt, or cut short).
    case badGzip(String, reason: String)
    /// Two files (or arrays) that must describe the same samples disagree on their count.
    case countMismatch(String, String, Int, Int)
    /// A CSV problem at a line (1-based, counting the header as line 1).
    case csv(String, line: Int, reason: String)
    /// Anything else wrong with a file's content or a data set's arguments.
    case invalid(String, reason: String)
    /// A NaN or infinite value in data (see `NonFiniteValues`): the file (or source), which part (features,
    /// targets, a tensor's name), the sample (0-based) and, for samples of more than one value, the element in
    /// the sample (0-based, row-major).
    case nonFinite(String, part: String, sample: Int, element: Int?, value: Float)

    public var description: String {
        switch self {
        case .missingFile(let f, let reason):
            return "\(f): cannot read the file (\(reason))"
        case .badMagic(let f, let found, let expected):
            return "\(f): wrong magic number \(found), expected \(expected) (is this an IDX file of the MNIST family?)"
        case .truncated(let f, let expected, let got):
            return "\(f): truncated: the header announces \(expected) bytes, the file has \(got)"
        case .badGzip(let f, let reason):
            return "\(f): cannot decompress gzip data (\(reason))"
        case .countMismatch(let a, let b, let na, let nb):
            return "\(a) holds \(na) samples but \(b) holds \(nb); they must describe the same samples"
        case .csv(let f, let line, let reason):
            return "\(f):\(line): \(reason)"
        case .invalid(let f, let reason):
            return "\(f): \(reason)"
        case .nonFinite(let f, let part, let sample, let element, let value):
            return "\(f): \(part) of sample \(sample)" + (element.map { ", element \($0)," } ?? "")
                + " is \(value): NaN and infinite values are refused (build the data set with nonFinite: .replace(with: 0) to replace them)"
        }
    }
}
