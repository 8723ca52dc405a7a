import ArgumentParser
import Dispatch
import Foundation
import Myelin
import Synchronization

/// Ctrl-C (SIGINT) and SIGTERM while `myelin train` runs. The first signal asks `fit` to stop before its next batch
/// (the batch in progress finishes) through a `StopRequest`; the trainer then saves a checkpoint that resumes at
/// the very next batch (`--save`, else a `rescued-<time>-interrupted-<sample>.safetensors` file named in the
/// message), writes `--history` and `--plot`, says so, and exits with 128 + the signal's number: 130 for SIGINT,
/// 143 for SIGTERM (the shell's convention). A second signal ends the process at once with the same code; files are
/// written through a temporary file and a rename, so none is left torn (at worst a hidden `.tmp` file that the
/// next write of that file removes). Under mpirun, when every rank gets the signal (as a scheduler sends it), the
/// ranks agree to stop at the same batch and rank 0 alone saves; Open MPI's mpirun answers a signal of its own by
/// ending the job within about a second.
///
/// The signals are received by dispatch sources (the process ignores them, so nothing runs in a signal handler's
/// context): their handler only sets the request's atomic flag, or ends the process on the second signal.
final class TrainingInterrupt: Sendable {
    static let shared = TrainingInterrupt()

    /// What `fit` checks before every batch.
    let stop = StopRequest()
    /// The first signal received, 0 while none.
    private let first = Atomic<Int32>(0)
    private let sources = Mutex<[DispatchSourceSignal]>([])

    /// Starts listening for SIGINT and SIGTERM (once; later calls do nothing).
    func install() {
        sources.withLock { sources in
            guard sources.isEmpty else { return }
            for signalNumber in [SIGINT, SIGTERM] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler { [self, source] in   // both live as long as the process
                    // Two signals in quick succession may arrive as one event with data 2.
                    for _ in 0..<Swift.max(1, Int(source.data)) { self.received(signalNumber) }
                }
                source.resume()
                sources.append(source)
            }
        }
    }

    private func received(_ signalNumber: Int32) {
        if first.compareExchange(expected: 0, desired: signalNumber, ordering: .sequentiallyConsistent).exchanged {
            let again = signalNumber == SIGINT ? "press Ctrl-C again" : "send it again"
            Self.say("\n\(Self.name(signalNumber)) received: finishing the current batch, then saving a checkpoint that resumes there (\(again) to stop at once without saving)\n")
            stop.request()
        } else {
            Self.say("\n\(Self.name(signalNumber)) received again: stopping at once, nothing more is saved\n")
            _exit(128 + first.load(ordering: .sequentiallyConsistent))
        }
    }

    /// The first signal received, if any.
    var signalReceived: Int32? {
        let s = first.load(ordering: .sequentiallyConsistent)
        return s == 0 ? nil : s
    }

    /// The exit status after the first signal: 128 + its number.
    var exitCode: ExitCode { ExitCode(128 + (signalReceived ?? SIGINT)) }

    static func name(_ signalNumber: Int32) -> String {
        signalNumber == SIGINT ? "SIGINT (Ctrl-C)" : signalNumber == SIGTERM ? "SIGTERM" : "signal \(signalNumber)"
    }

    /// Writes `text` to standard error at once.
    static func say(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

extension TrainOptions {
    /// After training stopped on a signal at `position`: saves the checkpoint (to `--save`, else to a rescue file in
    /// the current or the temporary folder) and the other outputs, says where and how to resume, and exits with
    /// 128 + the signal's number (by throwing `ExitCode`).
    func finishInterrupted(model: any Layer, optimizer: any Optimizer, position: TrainingPosition, history: History,
                           title: String, baseLearningRate: Float, sample: String, metadata: [String: String] = [:]) throws -> Never {
        let interrupt = TrainingInterrupt.shared
        let checkpoint = save ?? Self.rescuePath(for: "interrupted-\(sample).safetensors")
        let signalName = TrainingInterrupt.name(interrupt.signalReceived ?? SIGINT)
        print("Training stopped by \(signalName) \(position.description); saving what it has done")
        do {
            try writeOutputs(model: model, optimizer: optimizer, epoch: position.epoch, partialEpoch: position.partialEpoch,
                             history: history, title: title, baseLearningRate: baseLearningRate, savePath: checkpoint,
                             metadata: metadata)
        } catch {
            TrainingInterrupt.say("Error: \(error)\n")
            throw interrupt.exitCode
        }
        print("Stopped by \(signalName) \(position.description); the checkpoint \(checkpoint) resumes there: run the same command with --load \(checkpoint)")
        throw interrupt.exitCode
    }

    /// A new `rescued-<time>-<name>` file in the first folder of `AtomicFile.defaultRescueFolders` that can be
    /// written (the current folder, else the temporary one).
    static func rescuePath(for name: String) -> String {
        let stamp = String(Int(Date().timeIntervalSince1970))
        let folders = AtomicFile.defaultRescueFolders
        let folder = folders.first { (try? AtomicFile.checkWritable($0.appendingPathComponent("rescued-\(stamp)-\(name)"))) != nil } ?? folders[0]
        return folder.appendingPathComponent("rescued-\(stamp)-\(name)").path
    }
}
