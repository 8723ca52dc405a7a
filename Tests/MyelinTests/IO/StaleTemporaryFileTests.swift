import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Saves killed halfway leave temporary files; the next save to the same path removes those of dead processes, and
/// nothing else.
@Suite struct StaleTemporaryFileTests {
    @Test func theNextSaveRemovesTemporaryFilesOfDeadProcessesOnly() throws {
        try inTemporaryFolder { dir in
            let dead = try deadProcessID()
            let big = Data(repeating: 7, count: 1 << 20)
            let stale = [".m.safetensors.\(dead).123.tmp", ".m.safetensors.\(dead).4294967295.tmp"]
            let kept = [".m.safetensors.1.789.tmp",                 // pid 1 is alive: a write in progress
                        ".m.safetensors.\(getpid()).5.tmp",         // this process
                        ".other.safetensors.\(dead).1.tmp",         // another target
                        ".m.safetensors.\(dead).tmp",               // not our pattern
                        ".m.safetensors.\(dead).12x.tmp",
                        "m.safetensors.\(dead).1.tmp",
                        ".m.safetensors.\(dead).1.tmp.keep"]
            for name in stale + kept { try big.write(to: dir.appendingPathComponent(name)) }
            let model = Dense(inputSize: 2, outputSize: 2, seed: 1, device: .cpu)
            try model.save(to: dir.appendingPathComponent("m.safetensors"))
            let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
            #expect(left == Set(kept + ["m.safetensors"]))
        }
    }

    @Test func temporaryNamesCarryTheProcessID() throws {
        let url = URL(fileURLWithPath: "/some/folder/model.v2.safetensors")
        let name = URL(fileURLWithPath: AtomicFile.temporaryPath(for: url)).lastPathComponent
        #expect(AtomicFile.temporaryFileProcess(name, target: "model.v2.safetensors") == getpid())
        #expect(AtomicFile.temporaryFileProcess(name, target: "model.safetensors") == nil)
        #expect(AtomicFile.temporaryFileProcess(".model.v2.safetensors.-3.1.tmp", target: "model.v2.safetensors") == nil)
        #expect(!AtomicFile.processIsAlive(try deadProcessID()))
        #expect(AtomicFile.processIsAlive(1) && AtomicFile.processIsAlive(getpid()))
    }

    @Test func aFailedWriteLeavesNoTemporaryFile() throws {
        try inTemporaryFolder { dir in
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("target"), withIntermediateDirectories: true)
            _ = errorText { try AtomicFile.write(Data(count: 1000), to: dir.appendingPathComponent("target")) }
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["target"])
        }
    }
}
