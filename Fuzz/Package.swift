// swift-tools-version: 6.1
// Coverage-guided fuzz targets for Myelin's readers (libFuzzer). Not part of the library: build and run them with
// `scripts/fuzz` (it passes `--sanitize=fuzzer --sanitize=address`, which make each target a libFuzzer binary).
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
        .executableTarget(name: "FuzzIDX", dependencies: ["FuzzHarness"]),
        .executableTarget(name: "FuzzCSV", dependencies: ["FuzzHarness"]),
        .executableTarget(name: "FuzzSafeTensors", dependencies: ["FuzzHarness"]),
        .executableTarget(name: "FuzzCheckpoint", dependencies: ["FuzzHarness"]),
    ],
    swiftLanguageModes: [.v6]
)
