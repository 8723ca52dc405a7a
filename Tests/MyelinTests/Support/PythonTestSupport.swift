import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

// Python on the side of the interoperability tests: whether its modules are there, and running the repository's
// Python scripts.

/// Whether Python's safetensors and numpy can be imported (scripts/setup --test installs them with pip).
let pythonSafetensorsAvailable = pythonCanImport("safetensors, numpy")

/// Whether `python3 -c "import <modules>"` succeeds.
func pythonCanImport(_ modules: String) -> Bool {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import \(modules)"]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return false }
    p.waitUntilExit()
    return p.terminationStatus == 0
}

/// Runs scripts/safetensors_check.py; returns (status, output).
func runPythonCheck(_ arguments: [String]) throws -> (Int32, String) {
    try runPythonScript("scripts/safetensors_check.py", arguments)
}

/// Runs a Python script of the repository (`path` relative to its top) with python3; returns (status, output
/// and error output together).
func runPythonScript(_ path: String, _ arguments: [String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", repositoryRoot.appendingPathComponent(path).path] + arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: out, as: UTF8.self))
}

/// Whether python3 can import torch and safetensors (scripts/setup --test installs a CPU torch wheel from a local
/// find-links folder, and safetensors with pip).
let pythonTorchAvailable = pythonCanImport("torch, safetensors")
