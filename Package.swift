// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Myelin",
    products: [
        .library(name: "Myelin", targets: ["Myelin"]),
        .executable(name: "myelin", targets: ["MyelinCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenCL",
            pkgConfig: "OpenCL",
            providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]
        ),
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "Myelin",
            dependencies: ["COpenCL", "CBLAS", "CZlib"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))],
            linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("z")]
        ),
        .executableTarget(
            name: "MyelinCLI",
            dependencies: [
                "Myelin",
                "CBLAS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "MyelinTests",
            dependencies: [
                "Myelin",
                .product(name: "Numerics", package: "swift-numerics"),
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)
