// swift-tools-version: 6.1
// The `myelin` command: sample trainers, device listing and benchmarks. A package of its own so that a
// consumer of the Myelin library never builds it or swift-argument-parser.
import PackageDescription

let package = Package(
    name: "MyelinCLI",
    products: [
        .executable(name: "myelin", targets: ["MyelinCLI"]),
    ],
    dependencies: [
        .package(name: "Myelin", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // OpenBLAS called directly, for `myelin bench gemm`'s reference column.
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Line-buffered standard output (C's stdio), for logs written to files.
        .systemLibrary(name: "CTerminal"),
        .executableTarget(
            name: "MyelinCLI",
            dependencies: [
                .product(name: "Myelin", package: "Myelin"),
                .product(name: "MyelinMPI", package: "Myelin"),
                "COpenBLAS",
                "CTerminal",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // mimalloc in place of glibc's malloc for the whole process (Debian's libmimalloc-dev). PoCL allocates
            // a command and a copy of each kernel argument at every enqueue and frees them on its worker
            // threads; glibc serves that pattern from its locked arena (the freed chunks fill the worker's
            // thread cache, never the caller's), which made malloc and free about a third of a small step's time.
            // README ("Small steps on PoCL") has the figures; the Myelin library itself never links an allocator.
            linkerSettings: [.linkedLibrary("mimalloc", .when(platforms: [.linux]))]
        ),
    ],
    swiftLanguageModes: [.v6]
)
