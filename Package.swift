// swift-tools-version: 6.1
// The Myelin library. Consumers depend on the product "Myelin" and build only the library targets below:
// the `myelin` command and its benchmarks are a package of their own in CLI/ (it depends on this one by path).
import PackageDescription

let package = Package(
    name: "Myelin",
    products: [
        .library(name: "Myelin", targets: ["Myelin"]),
        // Data-parallel training over processes and hosts on Open MPI; a product of its own, so that users of
        // `Myelin` alone never need MPI.
        .library(name: "MyelinMPI", targets: ["MyelinMPI"]),
    ],
    dependencies: [
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
        // Open MPI, loaded with dlopen when distributed training starts (Sources/CMPI/abi.h): nothing links libmpi,
        // so building needs no MPI and the `myelin` command starts on a machine without it.
        .target(name: "CMPI", linkerSettings: [.linkedLibrary("dl")]),
        // Inline vector math for the CPU backend (a vector square root).
        .target(name: "CMyelinMath"),
        // oneDNN's convolutions for the CPU backend, loaded with dlopen (Sources/CMyelinDNNL/include/myelin_dnnl.h):
        // building needs libdnnl-dev's headers; without libdnnl at run time the CPU device keeps its im2col path.
        .target(name: "CMyelinDNNL", linkerSettings: [.linkedLibrary("dl")]),
        // Devices, tensors, autograd, the CPU and OpenCL backends and their kernels.
        .target(
            name: "MyelinCore",
            dependencies: ["COpenCL", "CBLAS", "CMyelinMath", "CMyelinDNNL"],
            resources: [
                .embedInCode("Kernels/attention.cl"),
                .embedInCode("Kernels/augment.cl"),
                .embedInCode("Kernels/common.cl"),
                .embedInCode("Kernels/conv.cl"),
                .embedInCode("Kernels/elementwise.cl"),
                .embedInCode("Kernels/gemm.cl"),
                .embedInCode("Kernels/gemm_direct.cl"),
                .embedInCode("Kernels/gemm_tuned.cl"),
                .embedInCode("Kernels/gemm_tuned_conv.cl"),
                .embedInCode("Kernels/layout.cl"),
                .embedInCode("Kernels/normalization.cl"),
                .embedInCode("Kernels/optimizers.cl"),
                .embedInCode("Kernels/reduce.cl"),
            ],
            linkerSettings: [.linkedLibrary("dl")]
        ),
        // Layers, losses, optimizers, data sets, checkpoints and `fit`; re-exports MyelinCore.
        .target(
            name: "Myelin",
            dependencies: ["MyelinCore", "CZlib"],
            resources: [
                .embedInCode("Resources/and.csv"),
                .embedInCode("Resources/apartments.csv"),
                .embedInCode("Resources/houses.csv"),
                .embedInCode("Resources/lung_cancer.csv"),
                .embedInCode("Resources/xor.csv"),
            ],
            linkerSettings: [.linkedLibrary("z")]
        ),
        // `DistributedDataParallel`: Myelin's `DataParallel` on MPI (broadcast, bucketed gradient allreduce).
        .target(name: "MyelinMPI", dependencies: ["Myelin", "CMPI"]),
        // Run under mpirun by scripts/mpi-check: data-parallel training equals one process on the global batch.
        .executableTarget(name: "MyelinMPICheck", dependencies: ["MyelinMPI"], path: "Tests/MyelinMPICheck"),
        .testTarget(
            name: "MyelinTests",
            dependencies: [
                "Myelin",
                .product(name: "Numerics", package: "swift-numerics"),
            ],
            // The fuzzers' reproducers, read by FuzzRegressionTests from the source tree.
            exclude: ["Regressions"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
