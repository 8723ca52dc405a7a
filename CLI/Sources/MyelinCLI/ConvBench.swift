import ArgumentParser
import Foundation
import Myelin

/// `myelin bench conv`: forward, backward-data and backward-weight time and GFLOP/s of every convolution of the
/// `cnn` and `resnet` models (batch 128) per device, for `Tensor.conv2d` (the production path) and, for
/// reference, the old im2col + batched-matmul graph. `--model cnn` times training steps of the whole `cnn` instead.
///
/// A pass costs 2·N·O·C·kh·kw·outH·outW floating-point operations. Each backward pass is timed alone: the
/// `backward()` of a forward run (untimed) in which only that input requires a gradient. `--torch` sets PyTorch's
/// figures (`torch.nn.functional.conv2d`, oneDNN underneath) on the same shapes beside the CPU device's, measured in
/// the same run (ConvBench+Torch.swift).
struct ConvBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Times the convolutions of the cnn and resnet models (forward, backward data, backward weight), beside PyTorch's with --torch, or --model cnn training steps.")

    @Option(help: "cpu, opencl[:N] or all (cpu and every OpenCL device).") var device = "all"
    @Option(parsing: .unconditional, help: "Images per batch.") var batch = 128
    @Option(parsing: .unconditional, help: "Timed runs per figure (the median is reported).") var runs = 3
    @Option(help: "Time training steps of this model instead of single convolutions: cnn.") var model: String?
    @Option(parsing: .unconditional, help: "Training steps timed with --model.") var steps = 10
    @Option(help: "Convolution path for --model: fast (Conv2D, Tensor.conv2d) or im2col (the old graph of im2col + matmul nodes).")
    var conv = "fast"
    @Flag(help: "Skip the im2col + matmul reference rows.") var noReference = false
    @Flag(help: "Report the fastest run instead of the median (for a busy machine).") var best = false
    @Flag(help: "Time with the process's CPU time (user + system, all threads) instead of the wall clock: steadier on a busy machine (run with MYELIN_THREADS=1 to compare work).")
    var cpuTime = false
    @Option(help: "Only the shapes whose name contains this text.") var only: String?
    @Flag(help: "Set PyTorch's figures on the same shapes beside the CPU device's, layer by layer in the same run (Benchmarks/torch_conv_layers.py run by --python), with the ratios and each model's total.")
    var torch = false
    @Option(help: "The Python that runs Benchmarks/torch_conv_layers.py for --torch.") var python = ".venv-bench/bin/python"

    func validate() throws {
        try checkingValues {
            try ValueCheck.atLeast(1, batch, name: "--batch")
            try ValueCheck.atLeast(1, runs, name: "--runs")
            try ValueCheck.atLeast(1, steps, name: "--steps")
        }
        if let model, model != "cnn" { throw ValidationError("--model must be cnn, got \(model)") }
        if conv != "fast" && conv != "im2col" { throw ValidationError("--conv must be fast or im2col, got \(conv)") }
        if device != "all" { _ = try DeviceSpec(parsing: device) }
        if torch && model != nil { throw ValidationError("--torch compares single convolutions; leave out --model") }
        if torch && device != "all" && device != "cpu" { throw ValidationError("--torch compares the cpu device with PyTorch's CPU; use --device cpu") }
    }

    /// One convolution of the models: input channels, output channels, square image side, kernel, stride, padding,
    /// and how many layers of this shape the cnn, ResNet-8 and ResNet-14 have.
    struct Shape {
        var name: String, c: Int, o: Int, size: Int, k: Int, s: Int, p: Int, uses: [Int]
        var out: Int { (size + 2 * p - k) / s + 1 }
        func flops(batch: Int) -> Double { 2 * Double(batch * o * c * k * k * out * out) }
    }

    static let shapes: [Shape] = [
        Shape(name: "cnn conv1 1->32 3x3 @28", c: 1, o: 32, size: 28, k: 3, s: 1, p: 1, uses: [1, 0, 0]),
        Shape(name: "cnn conv2 32->64 3x3 @14", c: 32, o: 64, size: 14, k: 3, s: 1, p: 1, uses: [1, 0, 0]),
        Shape(name: "resnet stem 1->16 3x3 @28", c: 1, o: 16, size: 28, k: 3, s: 1, p: 1, uses: [0, 1, 1]),
        Shape(name: "resnet 16->16 3x3 @28", c: 16, o: 16, size: 28, k: 3, s: 1, p: 1, uses: [0, 2, 4]),
        Shape(name: "resnet 16->32 3x3 s2 @28", c: 16, o: 32, size: 28, k: 3, s: 2, p: 1, uses: [0, 1, 1]),
        Shape(name: "resnet 32->32 3x3 @14", c: 32, o: 32, size: 14, k: 3, s: 1, p: 1, uses: [0, 1, 3]),
        Shape(name: "resnet 16->32 1x1 s2 @28", c: 16, o: 32, size: 28, k: 1, s: 2, p: 0, uses: [0, 1, 1]),
        Shape(name: "resnet 32->64 3x3 s2 @14", c: 32, o: 64, size: 14, k: 3, s: 2, p: 1, uses: [0, 1, 1]),
        Shape(name: "resnet 64->64 3x3 @7", c: 64, o: 64, size: 7, k: 3, s: 1, p: 1, uses: [0, 1, 3]),
        Shape(name: "resnet 32->64 1x1 s2 @14", c: 32, o: 64, size: 14, k: 1, s: 2, p: 0, uses: [0, 1, 1]),
    ]

    func devices() throws -> [Device] {
        if torch { return [.cpu] }
        if device == "all" {
            return [.cpu] + (0..<OpenCLPlatforms.devices().count).compactMap { try? Device.make(.opencl(index: $0)) }
        }
        return [try Device.make(DeviceSpec(parsing: device))]
    }

    func run() throws {
        let chosen = try devices()
        // A batch's largest buffer (the im2col columns [batch, 16·9, 28·28] of the 16->16 convolution), or the cnn's
        // training, against each device before anything is made.
        for d in chosen {
            if model != nil {
                try ConvNets.fashionCNNMemory(batchSize: batch, optimizerStateTensors: 2, options: "--batch \(batch)").check(on: d)
            } else {
                try d.checkAllocation(shape: [batch, 16 * 9, 28 * 28], for: "--batch \(batch): the im2col columns [\(batch), 144, 784]")
            }
        }
        if torch {
            try compareWithTorch()
            return
        }
        if model != nil {
            for d in chosen { try timeModel(on: d) }
            print(String(format: "Peak resident memory of this process: %.0f MiB", TrainBench.peakMiB()))
            return
        }
        print("Convolutions of the cnn and resnet models, batch \(batch), \(best ? "fastest" : "median") of \(runs) runs after a warm-up; "
              + "ms and GFLOP/s (2·N·O·C·kh·kw·outH·outW per pass)")
        print("backward data / weight: backward() of a forward in which only x / only the weight requires a gradient"
              + (cpuTime ? "; CPU time of the process (all threads), not wall time" : ""))
        for d in chosen {
            print("")
            print("\(d.name): \(d.details)")
            print(Self.row(["shape", "path", "fwd ms", "GFLOP/s", "bwd-data ms", "GFLOP/s", "bwd-weight ms", "GFLOP/s"]))
            for shape in Self.shapes where only.map({ shape.name.contains($0) }) ?? true {
                for path in noReference ? ["conv2d"] : ["conv2d", "im2col"] {
                    let t = try time(shape, path: path, on: d)
                    let f = shape.flops(batch: batch)
                    func cells(_ s: Double) -> [String] { [String(format: "%.2f", s * 1e3), String(format: "%.1f", f / s / 1e9)] }
                    print(Self.row([shape.name, path] + cells(t.forward) + cells(t.backwardData) + cells(t.backwardWeight)))
                    fflush(nil)
                }
            }
        }
        print(String(format: "Peak resident memory of this process: %.0f MiB", TrainBench.peakMiB()))
    }

    /// Seconds on the wall clock, or of CPU time with `--cpu-time`.
    func now() -> Double {
        guard cpuTime else { return Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func row(_ cells: [String]) -> String {
        let widths = [26, 7, 9, 8, 12, 8, 14, 8]
        return zip(cells, widths).enumerated().map { i, cw in
            let (c, w) = cw
            let pad = String(repeating: " ", count: max(0, w - c.count))
            return i == 0 ? c + pad : pad + c
        }.joined(separator: " ")
    }

    /// The convolution by `path`: `conv2d` (Tensor.conv2d) or `im2col` (im2col, then weight [O, K] · cols batched).
    static func convolve(_ x: Tensor, _ w: Tensor, _ shape: Shape, path: String) throws -> Tensor {
        if path == "conv2d" {
            return try x.conv2d(weight: w, bias: nil, stride: (shape.s, shape.s), padding: (shape.p, shape.p))
        }
        let cols = try x.im2col(kernel: (shape.k, shape.k), stride: (shape.s, shape.s), padding: (shape.p, shape.p))
        let y = try w.reshaped([shape.o, shape.c * shape.k * shape.k]).matmul(cols)
        return try y.reshaped([x.shape[0], shape.o, shape.out, shape.out])
    }

    /// Median seconds of the forward pass and of each backward pass.
    func time(_ shape: Shape, path: String, on device: Device) throws -> (forward: Double, backwardData: Double, backwardWeight: Double) {
        let xv = (0..<(batch * shape.c * shape.size * shape.size)).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 }
        let wv = (0..<(shape.o * shape.c * shape.k * shape.k)).map { Float(($0 * 104_729) % 997) / 997 - 0.5 }
        let x = try Tensor(xv, shape: [batch, shape.c, shape.size, shape.size], on: device)
        let w = try Tensor(wv, shape: [shape.o, shape.c, shape.k, shape.k], on: device)
        let gy = Tensor.full([batch, shape.o, shape.out, shape.out], 0.01, on: device)
        device.synchronize()
        // Each run: `prepare` untimed, then `body` timed to the end of the device's work.
        func measure(prepare: () throws -> Tensor, _ body: (Tensor) throws -> Void) throws -> Double {
            try body(try prepare())  // warm-up: kernels built, buffers pooled
            var times: [Double] = []
            for _ in 0..<runs {
                let input = try prepare()
                device.synchronize()
                let t0 = now()
                try body(input)
                device.synchronize()
                times.append(now() - t0)
            }
            times.sort()
            return best ? times[0] : times[times.count / 2]
        }
        let forward = try measure(prepare: { x }) { x in _ = try withNoGrad { try Self.convolve(x, w, shape, path: path) } }
        // The backward of a forward run with only `leaf` requiring a gradient.
        func backward(_ leaf: Tensor) throws -> Double {
            leaf.requiresGrad = true
            defer { leaf.requiresGrad = false; leaf.zeroGrad() }
            return try measure(prepare: { leaf.zeroGrad(); return try Self.convolve(x, w, shape, path: path) }) { y in
                try y.backward(gy)
            }
        }
        return (forward, try backward(x), try backward(w))
    }

    /// The issue's `cnn` from the library's layers (with `--conv im2col`, its convolutions as the old graph).
    func cnn(on device: Device) -> Sequential {
        let path = conv
        func convolution(_ c: Int, _ o: Int, seed: UInt64) -> any Layer {
            let layer = Conv2D(inChannels: c, outChannels: o, kernelSize: 3, padding: 1, bias: false, seed: seed, device: device)
            return path == "im2col" ? Im2colConvolution(layer) : layer
        }
        return Sequential {
            convolution(1, 32, seed: 1)
            BatchNorm(features: 32, device: device)
            ReLU()
            MaxPool2D(kernelSize: 2)
            convolution(32, 64, seed: 2)
            BatchNorm(features: 64, device: device)
            ReLU()
            MaxPool2D(kernelSize: 2)
            Flatten()
            Dense(inputSize: 3136, outputSize: 128, activation: .relu, seed: 3, device: device)
            Dense(inputSize: 128, outputSize: 10, seed: 4, device: device)
        }
    }

    /// Samples/s of `steps` training steps (Adam 1e-3, random images and labels) after two warm-up steps.
    func timeModel(on device: Device) throws {
        let net = cnn(on: device)
        let adam = try Adam(parameters: net.parameters, learningRate: 1e-3)
        let images = try Tensor((0..<(batch * 784)).map { Float(($0 * 7919) % 1000) / 1000 }, shape: [batch, 1, 28, 28], on: device)
        let labels = try Tensor((0..<batch).map { Float(($0 * 7) % 10) }, shape: [batch], on: device)
        func step() throws {
            adam.zeroGrad()
            try softmaxCrossEntropy(logits: net(images), labels: labels).backward()
            try adam.step()
        }
        for _ in 0..<2 { try step() }
        device.synchronize()
        let start = now()
        for _ in 0..<steps { try step() }
        device.synchronize()
        let seconds = now() - start
        print(String(format: "cnn training (%@ convolutions%@) %@: %d steps of %d  %.2f s  %.0f samples/s  peak RSS %.0f MiB",
                     conv, cpuTime ? ", CPU time" : "", device.name, steps, batch, seconds, Double(steps * batch) / seconds, TrainBench.peakMiB()))
        fflush(nil)
    }
}

/// A `Conv2D` computed the old way, as a graph of im2col, reshape and batched-matmul nodes (only for
/// `myelin bench conv --model cnn --conv im2col`, the reference the fast path is measured against).
final class Im2colConvolution: Layer {
    let conv: Conv2D
    var isTraining = true

    init(_ conv: Conv2D) { self.conv = conv }

    func callAsFunction(_ input: Tensor) throws -> Tensor {
        let (kh, kw) = conv.kernelSize
        let cols = try input.im2col(kernel: conv.kernelSize, stride: conv.stride, padding: conv.padding)
        let outH = (input.shape[2] + 2 * conv.padding.0 - kh) / conv.stride.0 + 1
        let outW = (input.shape[3] + 2 * conv.padding.1 - kw) / conv.stride.1 + 1
        let y = try conv.weight.reshaped([conv.outChannels, conv.inChannels * kh * kw]).matmul(cols)
        return try y.reshaped([input.shape[0], conv.outChannels, outH, outW])
    }

    var namedTensors: [(String, Tensor)] { conv.namedTensors }
    func setTensor(_ name: String, _ value: Tensor) throws { try conv.setTensor(name, value) }
    var layerDescription: String { "im2col " + conv.layerDescription }
}
