// swift-tools-version: 6.1
// Coverage-guided fuzz targets for Myelin's readers (libFuzzer). Not part of the library: build and run them with
// `scripts/fuzz`. It builds with `-Xswiftc -sanitize=fuzzer,address`, which instruments every Swift target (Myelin
// included) and links libFuzzer and AddressSanitizer. (SwiftPM's `--sanitize=fuzzer --sanitize=address` is not the
// same: the compiler keeps only the last `-sanitize=` it is given.)
import PackageDescription

let myelin: Target.Dependency = .product(name: "Myelin", package: "Myelin")

let package = Package(
    name: "MyelinFuzz",
    dependencies: [
        .package(name: "Myelin", path: ".."),
    ],
    targets: [
        // What each target does with one input; shared with the regression test in Tests/MyelinTests.
        .target(name: "FuzzHarness", dependencies: [myelin]),
        // LLVMFuzzerRunDriver, which each target's main calls.
        .target(name: "CLibFuzzer"),
        .executableTarget(name: "FuzzIDX", dependencies: ["FuzzHarness", "CLibFuzzer"]),
        .executableTarget(name: "FuzzCSV", dependencies: ["FuzzHarness", "CLibFuzzer"]),
        .executableTarget(name: "FuzzSafeTensors", dependencies: ["FuzzHarness", "CLibFuzzer"]),
        .executableTarget(name: "FuzzCheckpoint", dependencies: ["FuzzHarness", "CLibFuzzer"]),
        .executableTarget(name: "FuzzBertConfig", dependencies: ["FuzzHarness", "CLibFuzzer"]),
        .executableTarget(name: "FuzzVocab", dependencies: ["FuzzHarness", "CLibFuzzer"]),
        .executableTarget(name: "FuzzText", dependencies: ["FuzzHarness", "CLibFuzzer"]),
    ],
    swiftLanguageModes: [.v6]
)
