import Foundation
import Testing
@testable import Myelin

// Running the `myelin` command in tests: the binary `swift build --package-path CLI` makes (scripts/test builds it
// before running the tests; without it the command-line suites are skipped, as the Python checks are without
// their modules), its output, and signals sent while it runs.

enum MyelinCommandLine {
    /// The built command: `MYELIN_CLI` when set, else CLI/.build/debug/myelin of this source tree; nil when absent.
    static let path: String? = {
        if let given = ProcessInfo.processInfo.environment["MYELIN_CLI"], !given.isEmpty {
            return FileManager.default.isExecutableFile(atPath: given) ? given : nil
        }
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { root.deleteLastPathComponent() }   // Support, MyelinTests, Tests, this file
        let built = root.appendingPathComponent("CLI/.build/debug/myelin").path
        return FileManager.default.isExecutableFile(atPath: built) ? built : nil
    }()

    static var isBuilt: Bool { path != nil }
    static let skipReason: Comment = "the myelin command is not built (swift build --package-path CLI; scripts/test builds it)"

    /// What a finished run printed and its exit status.
    struct Result {
        let status: Int32
        let output: String
        let errors: String
        /// Standard output then standard error, for messages.
        var all: String { output + errors }
    }

    /// Starts `myelin arguments` in `folder` with the environment changed by `environment` (nil values remove
    /// a variable). Standard input is empty; both outputs are collected as they come.
    static func start(_ arguments: [String], environment: [String: String?] = [:], in folder: URL? = nil) throws -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(path))
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if let folder { process.currentDirectoryURL = folder }
        process.standardInput = FileHandle.nullDevice
        let running = Running(process)
        try process.run()
        running.startReading()
        return running
    }

    /// Runs `myelin arguments` to its end (at most `timeout` seconds, then it is killed and the test fails).
    static func run(_ arguments: [String], environment: [String: String?] = [:], in folder: URL? = nil,
                    timeout: Double = 300) throws -> Result {
        try start(arguments, environment: environment, in: folder).finish(timeout: timeout)
    }

    /// A running command.
    final class Running: @unchecked Sendable {
        let process: Process
        private let outputPipe = Pipe(), errorPipe = Pipe()
        private let lock = NSLock()
        private var output = Data(), errors = Data()
        private let done = DispatchGroup()

        init(_ process: Process) {
            self.process = process
            process.standardOutput = outputPipe
            process.standardError = errorPipe
        }

        func startReading() {
            for (pipe, isOutput) in [(outputPipe, true), (errorPipe, false)] {
                done.enter()
                DispatchQueue.global().async { [self] in
                    while true {
                        let data = pipe.fileHandleForReading.availableData
                        if data.isEmpty { break }
                        lock.withLock { if isOutput { output += data } else { errors += data } }
                    }
                    done.leave()
                }
            }
        }

        /// Standard output, then standard error, so far.
        var outputSoFar: String { lock.withLock { String(decoding: output, as: UTF8.self) + String(decoding: errors, as: UTF8.self) } }

        /// Waits until standard output or error contains `text` (true), or the process ended or `timeout` passed (false).
        func wait(for text: String, timeout: Double) -> Bool {
            let end = Date().addingTimeInterval(timeout)
            while Date() < end {
                if outputSoFar.contains(text) { return true }
                if !process.isRunning { return outputSoFar.contains(text) }
                usleep(2_000)
            }
            return false
        }

        /// Sends `signal` to the process (its own id, nothing else).
        func send(_ signal: Int32) { kill(process.processIdentifier, signal) }

        /// Waits for the end (killing the process after `timeout` seconds, which fails the test) and returns what
        /// it printed.
        func finish(timeout: Double = 300) throws -> Result {
            let end = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < end { usleep(20_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                Issue.record("myelin \(process.arguments ?? []) still ran after \(timeout) s and was killed")
            }
            process.waitUntilExit()
            _ = done.wait(timeout: .now() + 10)
            return lock.withLock {
                Result(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                       errors: String(decoding: errors, as: UTF8.self))
            }
        }
    }

    /// A folder of Fashion-MNIST-shaped IDX files (28×28 images, 10 classes) with `train` training and `test` test
    /// images of random pixels, for training runs that take seconds.
    static func tinyFashionMNIST(train: Int, test: Int, in folder: URL) throws -> URL {
        let dir = folder.appendingPathComponent("fashion")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var state: UInt64 = 12345
        func next() -> UInt8 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        for (split, count) in [("train", train), ("t10k", test)] {
            let images = (0..<(count * 784)).map { _ in next() }
            let labels = (0..<count).map { _ in next() % 10 }
            try Data(IDX.encode(uint8: images, shape: [count, 28, 28])).write(to: dir.appendingPathComponent("\(split)-images-idx3-ubyte"))
            try Data(IDX.encode(uint8: labels, shape: [count])).write(to: dir.appendingPathComponent("\(split)-labels-idx1-ubyte"))
        }
        return dir
    }
}
