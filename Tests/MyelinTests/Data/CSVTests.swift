import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// CSV tables: header rows, quotes and blank lines; errors naming the line and the column; the embedded toy tables
/// equal the files in Data/.
@Suite struct CSVTests {
    @Test func parsesHeaderRowsQuotesAndBlankLines() throws {
        let t = try CSVTable(parsing: "# comment\n a , \"b\" ,c\r\n1, 2.5, -3e2\n\n4,5,6\n", source: "t.csv")
        #expect(t.header == ["a", "b", "c"])
        #expect(t.rows == [[1, 2.5, -300], [4, 5, 6]])
        #expect(try t.columns(["c", "a"]) == [-300, 1, 6, 4])
        let tensor = try t.tensor(["b"], on: .cpu)
        #expect(tensor.shape == [2, 1])
    }

    @Test func wrongFieldCountNamesTheLine() {
        expectDataError({ _ = try CSVTable(parsing: "x,y\n1,2\n\n3\n", source: "bad.csv") }, contains: ["bad.csv:4", "1 fields, expected 2"])
        expectDataError({ _ = try CSVTable(parsing: "x,y\n1,2,3\n", source: "bad.csv") }, contains: ["bad.csv:2", "3 fields"])
    }

    @Test func nonNumberNamesLineAndColumn() {
        expectDataError({ _ = try CSVTable(parsing: "x,y\n1,2\n3,abc\n", source: "n.csv") }, contains: ["n.csv:3", "field 2 (y)", "abc"])
        expectDataError({ _ = try CSVTable(parsing: "x\nnan\n", source: "n.csv") }, contains: ["n.csv:2", "finite"])
        expectDataError({ _ = try CSVTable(parsing: "\n\n", source: "e.csv") }, contains: ["e.csv", "no header"])
        expectDataError({ _ = try CSVTable(parsing: "x,x\n1,2\n", source: "d.csv") }, contains: ["d.csv:1", "repeats"])
        expectDataError({ _ = try CSVTable(parsing: "x\n1\n", source: "c.csv").columns(["y"]) }, contains: ["c.csv", "'y'"])
    }

    @Test func missingFileIsNamed() {
        expectDataError({ _ = try CSVTable.read(URL(fileURLWithPath: "/nonexistent/x.csv")) }, contains: ["/nonexistent/x.csv", "no such file"])
    }

    @Test func embeddedToyTablesEqualTheDataFiles() throws {
        // Every file in Data/ is a ToyTable, embedded byte for byte (resources in Package.swift).
        let files = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Data").path)
            .filter { $0.hasSuffix(".csv") }.sorted()
        #expect(files == ToyTable.allCases.map(\.fileName).sorted())
        for t in ToyTable.allCases {
            let onDisk = try String(contentsOf: repositoryRoot.appendingPathComponent("Data/\(t.fileName)"), encoding: .utf8)
            #expect(onDisk == t.csvText, "Data/\(t.fileName) differs from the embedded copy")
            #expect(try CSVTable.read(repositoryRoot.appendingPathComponent("Data/\(t.fileName)")).rows == t.table.rows)
        }
        #expect(ToyTable.apartments.table.rowCount == 10)
        #expect(ToyTable.xor.table.rows.map { $0[2] } == [0, 1, 1, 0])
        #expect(ToyTable.and.table.rows.map { $0[2] } == [0, 0, 0, 1])
        #expect(ToyTable.houses.table.header == ["size", "rooms", "distance", "price"])
        #expect(ToyTable.lungCancer.table.rows[1] == [60, 0, 1, 1])
    }
}
