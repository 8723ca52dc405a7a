import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Outputs are checked before training; a failed write at the end keeps the data somewhere safe.
@Suite struct OutputPathTests {
    @Test func checkWritableRefusesBadPathsWithoutWritingAnything() throws {
        try inTemporaryFolder { dir in
            // A folder.
            var text = errorText { try AtomicFile.checkWritable(dir) }
            #expect(text.contains(dir.path) && text.contains("is a folder"), "\(text)")
            // A FIFO: refused, and left as it is.
            let fifo = dir.appendingPathComponent("pipe")
            makeFIFO(fifo)
            text = errorText { try AtomicFile.checkWritable(fifo) }
            #expect(text.contains(fifo.path) && text.contains("named pipe"), "\(text)")
            // A regular file in the middle of the path.
            let file = dir.appendingPathComponent("plain")
            try Data("x".utf8).write(to: file)
            let under = file.appendingPathComponent("sub/model.safetensors")
            text = errorText { try AtomicFile.checkWritable(under) }
            #expect(text.contains(under.path) && text.contains("a part of the path is not a folder"), "\(text)")
            // Nothing was written or left behind, and a good path (with folders still to create) passes.
            try AtomicFile.checkWritable(dir.appendingPathComponent("new/deeper/model.safetensors"))
            try AtomicFile.checkWritable(dir.appendingPathComponent("model.safetensors"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["pipe", "plain"])
        }
    }

    @Test(.enabled(if: !isRoot, "root may write anywhere")) func checkWritableRefusesAReadOnlyFolder() throws {
        try inTemporaryFolder { dir in
            let locked = dir.appendingPathComponent("locked")
            try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: true)
            chmod(locked.path, 0o555)
            defer { chmod(locked.path, 0o755) }
            let text = errorText { try AtomicFile.checkWritable(locked.appendingPathComponent("m.safetensors")) }
            #expect(text.contains("locked/m.safetensors") && text.contains("permission denied"), "\(text)")
        }
    }

    @Test func writeErrorsNameTheUserPathInWordsNeverATemporaryFile() throws {
        inTemporaryFolder { dir in
            let text = errorText { try AtomicFile.write(Data("abc".utf8), to: dir) }
            #expect(text.contains(dir.path) && text.contains("is a folder"), "\(text)")
            #expect(!text.contains(".tmp") && !text.contains("NSCocoaErrorDomain") && !text.contains("Error Domain"), "\(text)")
            let fifo = dir.appendingPathComponent("pipe")
            makeFIFO(fifo)
            let model = Dense(inputSize: 2, outputSize: 1, seed: 1, device: .cpu)
            let saveText = errorText { try model.save(to: fifo) }
            #expect(saveText.contains(fifo.path) && saveText.contains("not a regular file"), "\(saveText)")
            // Foundation's errors are mapped to the same words.
            #expect("\(FileError(path: "/x/m", action: .write, error: CocoaError(.fileWriteOutOfSpace)))" == "/x/m: cannot write the file (no space left on the disk (disk full))")
            #expect("\(FileError(path: "/x/m", action: .write, error: NSError(domain: NSPOSIXErrorDomain, code: Int(EACCES))))" == "/x/m: cannot write the file (permission denied)")
            #expect(FileError.words(errno: EROFS) == "the file system is read-only")
        }
    }

    @Test func aFailedWriteIsRescuedToAnotherFolderAndSaysWhere() throws {
        try inTemporaryFolder { dir in
            let blocker = dir.appendingPathComponent("not-a-folder")
            try Data("x".utf8).write(to: blocker)
            let rescue = dir.appendingPathComponent("rescue")
            try FileManager.default.createDirectory(at: rescue, withIntermediateDirectories: true)
            let intended = blocker.appendingPathComponent("model.safetensors")
            let model = Dense(inputSize: 3, outputSize: 2, seed: 4, device: .cpu)
            let outcome = try AtomicFile.rescuing(intended, rescueFolders: [blocker, rescue]) {
                try model.save(to: $0)
            }
            guard case .rescued(let place, let cause) = outcome else { Issue.record("expected a rescue, got \(outcome)"); return }
            #expect(place.deletingLastPathComponent().path == rescue.path)
            #expect(place.lastPathComponent.hasPrefix("rescued-") && place.lastPathComponent.hasSuffix("-model.safetensors"))
            #expect(cause.path == intended.path && "\(cause)".contains("is not a folder"), "\(cause)")
            let back = Dense(inputSize: 3, outputSize: 2, seed: 99, device: .cpu)
            try back.load(from: place)
            #expect(try back.weight.toArray() == model.weight.toArray())
            // The data version, and a write that works needs no rescue.
            #expect(try AtomicFile.write(Data("ok".utf8), to: dir.appendingPathComponent("fine.txt"), rescueFolders: [rescue]) == .written)
            // An error that is not about the file is not "rescued" (it would fail the same anywhere).
            struct Bad: Error {}
            #expect(throws: Bad.self) { _ = try AtomicFile.rescuing(dir.appendingPathComponent("x"), rescueFolders: [rescue]) { _ in throw Bad() } }
        }
    }

    @Test func modelCheckpointChecksItsPathBeforeTheFirstEpoch() throws {
        try inTemporaryFolder { dir in
            let model = Dense(inputSize: 2, outputSize: 1, seed: 3, device: .cpu)
            let before = try model.weight.toArray()
            let data = try Dataset(features: [0, 0, 0, 1, 1, 0, 1, 1], shape: [4, 2], targets: [0, 1, 1, 0], targetShape: [4, 1], on: .cpu)
            let optimizer = try SGD(parameters: model.parameters, learningRate: 0.5)
            final class EpochCounter: Callback {
                var epochs = 0
                func epochDidEnd(_ epoch: Int, logs: [String: Double], _ context: TrainingContext) throws { epochs += 1 }
            }
            let counter = EpochCounter()
            let text = errorText {
                _ = try model.fit(data, epochs: 3, batchSize: 4, loss: .meanSquaredError, optimizer: optimizer,
                                  callbacks: [counter, ModelCheckpoint(url: dir)], verbosity: .silent)
            }
            #expect(text.contains(dir.path) && text.contains("is a folder"), "\(text)")
            #expect(counter.epochs == 0)
            #expect(try model.weight.toArray() == before, "no training step before the check")
        }
    }
}
