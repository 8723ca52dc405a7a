internal import CMyelinDNNL
import Foundation

/// The CPU device's convolutions on oneDNN (Debian's libdnnl, loaded with dlopen by CMyelinDNNL): its direct
/// convolutions forward, backward-data and backward-weights, which read the images through its blocked layouts
/// (nChw16c on AVX-512, nChw8c on AVX2) with reorders inside each call, instead of im2col + GEMM. No column
/// buffer is made. On the convnets' 3×3 layers with 16-64 channels (batch 128, `myelin bench conv --device cpu`,
/// 2 busy cores) the primitives ran 2-7× the im2col path's speed; the 1×1 stride-2 layers' backward passes and
/// the 1-channel first layer's forward were slower (up to 5× on the 32->64 1×1's weight gradient), a small part of
/// a step. Training as a whole: README's "Devices". Primitives are made once per shape.
extension CPUBackend {
    /// Which algorithm the CPU device's convolutions use: `MYELIN_CPU_CONV` = `onednn` (oneDNN whenever it
    /// loads), `im2col` (the chunked im2col + GEMM of ChunkedConvolution.swift), or unset/`auto` (oneDNN
    /// whenever it loads and has a primitive for the shape, which it had for every shape measured).
    enum ConvChoice: String { case auto, onednn, im2col }

    static let convChoice = environmentChoice("MYELIN_CPU_CONV", default: ConvChoice.auto)

    /// Whether libdnnl loaded (tried once, on the first convolution); when not, `oneDNNError` says why.
    static let oneDNNAvailable: Bool = myelin_dnnl_load(Int32(clamping: configuredThreads)) != 0

    /// Why oneDNN did not load ("" when it did, or before it was tried).
    static var oneDNNError: String { String(cString: myelin_dnnl_error()) }

    /// The shape as CMyelinDNNL takes it, or nil when a size does not fit its 32-bit ints.
    static func oneDNNShape(_ g: ConvGeometry, outChannels o: Int) -> myelin_dnnl_conv? {
        let sizes = [g.batch, g.channels, g.height, g.width, o, g.kernelH, g.kernelW, g.strideH, g.strideW, g.padH, g.padW]
        guard sizes.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }),
              g.batch * g.channels * g.height * g.width <= Int(Int32.max),
              g.batch * o * g.positions <= Int(Int32.max) else { return nil }
        return myelin_dnnl_conv(n: Int32(g.batch), c: Int32(g.channels), h: Int32(g.height), w: Int32(g.width),
                                o: Int32(o), kh: Int32(g.kernelH), kw: Int32(g.kernelW), strideH: Int32(g.strideH),
                                strideW: Int32(g.strideW), padH: Int32(g.padH), padW: Int32(g.padW))
    }

    func usesLibraryConvolution(_ g: ConvGeometry, outChannels o: Int) -> Bool {
        Self.convChoice != .im2col && Self.oneDNNSupports(g, outChannels: o)
    }

    /// Whether oneDNN loaded and has a forward primitive for this shape (made and kept on the first ask).
    static func oneDNNSupports(_ g: ConvGeometry, outChannels o: Int) -> Bool {
        guard g.batch > 0, g.channels > 0, o > 0, g.positions > 0, var shape = oneDNNShape(g, outChannels: o),
              oneDNNAvailable else { return false }
        return myelin_dnnl_conv_supported(&shape) != 0
    }

    func libraryConv2dForward(x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, y: DeviceBuffer,
                              geometry g: ConvGeometry, outChannels o: Int) {
        guard allocated("libraryConv2dForward", x, weight, bias, y) else { return }
        count { $0.launches += 1 }
        if var shape = Self.oneDNNShape(g, outChannels: o),
           myelin_dnnl_conv_forward(&shape, x.host!, weight.host!, bias?.host, y.host!) == 0 { return }
        chunkedConv2dForward(x: x, weight: weight, bias: bias, y: y, geometry: g, outChannels: o)
    }

    func libraryConv2dBackward(x: DeviceBuffer, weight: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer?, gw: DeviceBuffer?,
                               geometry g: ConvGeometry, outChannels o: Int) {
        guard allocated("libraryConv2dBackward", x, weight, gy, gx, gw) else { return }
        count { $0.launches += 1 }
        // Each gradient falls back to the chunked algorithm alone if oneDNN refuses its primitive.
        var shape = Self.oneDNNShape(g, outChannels: o)
        // The weight gradient of a strided 1×1 convolution (ResNet's downsampling) measured 4-10× faster chunked
        // (1.5 against 6.2 ms, 0.7 against 6.8 ms at batch 128: oneDNN 2.6's kernel for it is a poor one).
        let stridedPointwise = g.kernelH == 1 && g.kernelW == 1 && (g.strideH > 1 || g.strideW > 1)
        if let gx, let gw, !stridedPointwise, shape != nil {
            // Both in one call: gy is reordered to oneDNN's layout once for the two primitives.
            let failed = myelin_dnnl_conv_backward(&shape!, x.host!, weight.host!, gy.host!, gx.host!, gw.host!)
            if failed & 1 != 0 { chunkedConv2dBackward(x: x, weight: weight, gy: gy, gx: gx, gw: nil, geometry: g, outChannels: o) }
            if failed & 2 != 0 { chunkedConv2dBackward(x: x, weight: weight, gy: gy, gx: nil, gw: gw, geometry: g, outChannels: o) }
            return
        }
        if let gx, shape == nil || myelin_dnnl_conv_backward_data(&shape!, weight.host!, gy.host!, gx.host!) != 0 {
            chunkedConv2dBackward(x: x, weight: weight, gy: gy, gx: gx, gw: nil, geometry: g, outChannels: o)
        }
        if let gw, stridedPointwise || shape == nil
            || myelin_dnnl_conv_backward_weights(&shape!, x.host!, gy.host!, gw.host!) != 0 {
            chunkedConv2dBackward(x: x, weight: weight, gy: gy, gx: nil, gw: gw, geometry: g, outChannels: o)
        }
    }

    /// The oneDNN implementations of a shape's forward / backward-data / backward-weights primitives once they
    /// ran (e.g. "jit:avx512_core / jit:avx512_core / jit_1x1:avx512_core"), for benchmarks; "" otherwise.
    static func oneDNNImplementations(_ g: ConvGeometry, outChannels o: Int) -> String {
        guard oneDNNAvailable, var shape = oneDNNShape(g, outChannels: o) else { return "" }
        var text = [CChar](repeating: 0, count: 256)
        myelin_dnnl_conv_describe(&shape, &text, Int32(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
