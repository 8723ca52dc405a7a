import Foundation

/// The course's small tables (the files in the repository's `Data/` folder), embedded in the library so that
/// samples work from any folder and in a copied binary.
///
/// ```swift
/// let table = ToyTable.apartments.table
/// print(table.header)   // ["size", "age", "price"]
/// ```
public enum ToyTable: String, CaseIterable, Sendable {
    /// x1, x2, y: the XOR truth table.
    case xor
    /// x1, x2, y: the AND truth table.
    case and
    /// size (pyeong), age (years), price: ten apartments.
    case apartments
    /// size, rooms, distance (km to the subway), price: three houses.
    case houses
    /// age, smoker, city, cancer: three patients.
    case lungCancer = "lung_cancer"

    /// The file name under `Data/`.
    public var fileName: String { rawValue + ".csv" }

    /// The CSV text, as in `Data/<fileName>`.
    public var csvText: String {
        let bytes: [UInt8]
        switch self {
        case .and: bytes = PackageResources.and_csv
        case .xor: bytes = PackageResources.xor_csv
        case .apartments: bytes = PackageResources.apartments_csv
        case .houses: bytes = PackageResources.houses_csv
        case .lungCancer: bytes = PackageResources.lung_cancer_csv
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The parsed table.
    public var table: CSVTable { try! CSVTable(parsing: csvText, source: "Data/\(fileName) (embedded)") }
}
