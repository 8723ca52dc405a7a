import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

// Shared helpers of the tests that read and write files: temporary folders, FIFOs, dead processes, and the text
// of the errors readers throw.

/// A fresh temporary folder for one test.
func temporaryFolder(_ name: String = #function) -> URL {
    let safe = name.filter { $0.isLetter || $0.isNumber }
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("myelin-\(safe)-\(UInt32.random(in: 0...UInt32.max))")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs `body` on a fresh temporary folder and removes it afterwards.
func inTemporaryFolder(_ name: String = #function, _ body: (URL) throws -> Void) rethrows {
    let dir = temporaryFolder(name)
    defer { try? FileManager.default.removeItem(at: dir) }
    try body(dir)
}

/// A fresh empty folder under the temporary directory (removed by the caller).
func reliabilityTestFolder(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("myelin-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Makes a named pipe (FIFO) at `url`.
func makeFIFO(_ url: URL) {
    #expect(mkfifo(url.path, 0o644) == 0, "mkfifo \(url.path)")
}

/// A process id that no process has any more (a child that has exited).
func deadProcessID() throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/true")
    try p.run()
    p.waitUntilExit()
    let pid = p.processIdentifier
    #expect(kill(pid, 0) != 0 && errno == ESRCH, "process \(pid) should be gone")
    return pid
}

/// Whether the tests run as root (who may read and write anywhere: permission tests are skipped).
let isRoot = geteuid() == 0

/// The text of the error `body` throws ("" when it throws none, which is recorded as a failure).
func errorText(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    do {
        try body()
        Issue.record("expected an error", sourceLocation: sourceLocation)
        return ""
    } catch {
        return "\(error)"
    }
}

/// Checks that `body` throws an error whose description contains every string of `parts` (data readers).
func expectDataError(_ body: () throws -> Void, contains parts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected an error containing \(parts)", sourceLocation: sourceLocation)
    } catch {
        let text = "\(error)"
        for p in parts where !text.contains(p) {
            Issue.record("error \"\(text)\" does not mention \"\(p)\"", sourceLocation: sourceLocation)
        }
    }
}

/// The same for checkpoint readers and writers.
func expectCheckpointError(_ body: () throws -> Void, contains parts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    expectDataError(body, contains: parts, sourceLocation: sourceLocation)
}
