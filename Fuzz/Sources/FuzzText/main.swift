// libFuzzer target: text inputs through FuzzHarness (Fuzz/Sources/FuzzHarness/FuzzHarness.swift).
import CLibFuzzer
import Foundation
import FuzzHarness

/// libFuzzer's entry, also needed by the linker: -sanitize=fuzzer links libFuzzer's main(), which names it
/// (SwiftPM then points main at this file's top-level code, below).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { FuzzHarness.fuzz(.text, data, size) }

FuzzHarness.writeSeedsIfAsked(.text)
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
