import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `myelin tune --seconds`: the table is on disk after each class, before the next one is measured, so a run cut
/// short by a timeout keeps the classes it measured.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct GemmTunerSavingTests {
    @Test func theTableIsSavedAfterEachClass() throws {
        let info = OpenCLPlatforms.devices()[0]
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let backend = try OpenCLBackend(index: 0, info: info, environment: ["MYELIN_CACHE_DIR": dir.path])
        let hash = GemmTuningTable.sourceHash(KernelLibrary.embedded)
        func classesOnDisk() -> [String] {
            guard case .current(let table) = GemmTuningTable.lookup(for: info, directory: dir, sourceHash: hash) else { return [] }
            return table.classes.keys.sorted()
        }
        // What the table on disk held when each class's first measurement was reported.
        var seen: [String: [String]] = [:]
        var tuner = GemmTuner(backend: backend, budget: 600, progress: { line in
            for name in ["narrow", "nn-small", "nt-small"] where line.hasPrefix(name + " ") && seen[name] == nil {
                seen[name] = classesOnDisk()
            }
        })
        tuner.classes = [(GemmShapeClass(name: "narrow"), GemmShapeClass.shape(33, 40, 10)),
                         (GemmShapeClass(name: "nn-small"), GemmShapeClass.shape(65, 47, 70)),
                         (GemmShapeClass(name: "nt-small"), GemmShapeClass.shape(40, 33, 50, transB: true))]
        #expect(classesOnDisk().isEmpty)
        let report = try tuner.run()
        #expect(report.results.count == 3)
        #expect(seen["narrow"] == [])
        #expect(seen["nn-small"] == ["narrow"])
        #expect(seen["nt-small"] == ["narrow", "nn-small"])
        #expect(classesOnDisk() == ["narrow", "nn-small", "nt-small"])
        // No temporary files are left beside the table (each save is a rename).
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("gemm-tuning") }
        #expect(names.count == 1, "\(names)")
    }
}
