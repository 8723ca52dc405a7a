import Foundation

// Convolution data movement on the CPU: plain loops (the naive form of Kernels/conv.cl).
extension CPUBackend {
    func im2col(x: DeviceBuffer, cols: DeviceBuffer, geometry g: ConvGeometry, padValue: Float) {
        guard allocated("im2col", x, cols) else { return }
        let px = x.host!, pc = cols.host!
        let oh = g.outH, ow = g.outW, l = g.positions, rows = g.patchSize
        guard g.batch > 0, rows > 0, l > 0 else { return }
        // One unit of work per (image, patch row).
        parallelFor(g.batch * rows, minimum: max(1, CPUBackend.parallelThreshold / l)) { lo, hi in
            for unit in lo..<hi {
                let n = unit / rows, r = unit % rows
                let c = r / (g.kernelH * g.kernelW), i = (r / g.kernelW) % g.kernelH, j = r % g.kernelW
                let src = px + (n * g.channels + c) * g.height * g.width
                let dst = pc + unit * l
                for y in 0..<oh {
                    let h = y * g.strideH - g.padH + i
                    for xo in 0..<ow {
                        let w = xo * g.strideW - g.padW + j
                        dst[y * ow + xo] = (h >= 0 && h < g.height && w >= 0 && w < g.width) ? src[h * g.width + w] : padValue
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func col2im(cols: DeviceBuffer, x: DeviceBuffer, geometry g: ConvGeometry) {
        guard allocated("col2im", cols, x) else { return }
        let px = x.host!, pc = cols.host!
        let oh = g.outH, ow = g.outW, l = g.positions, rows = g.patchSize
        let planes = g.batch * g.channels, plane = g.height * g.width
        guard planes > 0, plane > 0 else { return }
        // One unit of work per (image, channel) plane: zero it, then add back every patch entry.
        parallelFor(planes, minimum: max(1, CPUBackend.parallelThreshold / plane)) { lo, hi in
            for p in lo..<hi {
                let n = p / g.channels, c = p % g.channels
                let dst = px + p * plane
                for k in 0..<plane { dst[k] = 0 }
                guard rows > 0, l > 0 else { continue }
                for i in 0..<g.kernelH {
                    for j in 0..<g.kernelW {
                        let src = pc + (n * rows + (c * g.kernelH + i) * g.kernelW + j) * l
                        for y in 0..<oh {
                            let h = y * g.strideH - g.padH + i
                            guard h >= 0 && h < g.height else { continue }
                            for xo in 0..<ow {
                                let w = xo * g.strideW - g.padW + j
                                if w >= 0 && w < g.width { dst[h * g.width + w] += src[y * ow + xo] }
                            }
                        }
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }
}

// The chunked convolution's data movement (ChunkedConvolution.swift): columns of a chunk of images side by side.
extension CPUBackend {
    /// About 4 MiB of columns per chunk (`MYELIN_CONV_CHUNK` overrides; see `myelin bench conv`).
    var convChunkElements: Int { ConvChunking.budget(default: 1 << 20) }

    /// The output columns xo whose input column xo·sw − pw + j lies inside 0..<width.
    @inline(__always) private static func validColumns(_ g: ConvGeometry, kernelColumn j: Int) -> Range<Int> {
        let lo = max(0, (g.padW - j + g.strideW - 1) / g.strideW)
        let hi = min(g.outW, g.width - 1 + g.padW - j >= 0 ? (g.width - 1 + g.padW - j) / g.strideW + 1 : 0)
        return lo..<max(lo, hi)
    }

    func convUnfold(x: DeviceBuffer, cols: DeviceBuffer, geometry g: ConvGeometry, firstImage: Int, images: Int) {
        guard allocated("convUnfold", x, cols) else { return }
        let px = x.host!, pc = cols.host!
        let oh = g.outH, ow = g.outW, l = g.positions, rows = g.patchSize, rowLength = images * l
        guard images > 0, rows > 0, l > 0 else { return }
        let ranges = (0..<g.kernelW).map { Self.validColumns(g, kernelColumn: $0) }
        ranges.withUnsafeBufferPointer { ranges in
            // One unit of work per (patch row, image): L contiguous outputs.
            parallelFor(rows * images, minimum: max(1, CPUBackend.parallelThreshold / l)) { lo, hi in
                for unit in lo..<hi {
                    let r = unit / images, b = unit % images
                    let c = r / (g.kernelH * g.kernelW), i = (r / g.kernelW) % g.kernelH, j = r % g.kernelW
                    let src = px + ((firstImage + b) * g.channels + c) * g.height * g.width
                    let dst = pc + r * rowLength + b * l
                    let valid = ranges[j]
                    for y in 0..<oh {
                        let h = y * g.strideH - g.padH + i
                        let out = dst + y * ow
                        guard h >= 0 && h < g.height, !valid.isEmpty else {
                            out.update(repeating: 0, count: ow)
                            continue
                        }
                        for xo in 0..<valid.lowerBound { out[xo] = 0 }
                        let row = src + h * g.width - g.padW + j
                        if g.strideW == 1 {
                            (out + valid.lowerBound).update(from: row + valid.lowerBound, count: valid.count)
                        } else {
                            for xo in valid { out[xo] = row[xo * g.strideW] }
                        }
                        for xo in valid.upperBound..<ow { out[xo] = 0 }
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func convFold(cols: DeviceBuffer, x: DeviceBuffer, geometry g: ConvGeometry, firstImage: Int, images: Int) {
        guard allocated("convFold", cols, x) else { return }
        let px = x.host!, pc = cols.host!
        let oh = g.outH, ow = g.outW, l = g.positions, rowLength = images * l
        let plane = g.height * g.width
        guard images * g.channels > 0, plane > 0 else { return }
        let ranges = (0..<g.kernelW).map { Self.validColumns(g, kernelColumn: $0) }
        ranges.withUnsafeBufferPointer { ranges in
            // One unit of work per (image, channel) plane: zero it, then add back every patch entry.
            parallelFor(images * g.channels, minimum: max(1, CPUBackend.parallelThreshold / plane)) { lo, hi in
                for p in lo..<hi {
                    let b = p / g.channels, c = p % g.channels
                    let dst = px + (firstImage * g.channels + p) * plane
                    dst.update(repeating: 0, count: plane)
                    guard l > 0 else { continue }
                    for i in 0..<g.kernelH {
                        for j in 0..<g.kernelW {
                            let src = pc + ((c * g.kernelH + i) * g.kernelW + j) * rowLength + b * l
                            let valid = ranges[j]
                            for y in 0..<oh {
                                let h = y * g.strideH - g.padH + i
                                guard h >= 0 && h < g.height else { continue }
                                let row = dst + h * g.width - g.padW + j, srow = src + y * ow
                                if g.strideW == 1 {
                                    for xo in valid { row[xo] += srow[xo] }
                                } else {
                                    for xo in valid { row[xo * g.strideW] += srow[xo] }
                                }
                            }
                        }
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func convGatherOutput(y: DeviceBuffer, chunk: DeviceBuffer, outChannels o: Int, positions l: Int,
                          firstImage: Int, images: Int) {
        guard allocated("convGatherOutput", y, chunk) else { return }
        let py = y.host!, pc = chunk.host!
        guard images > 0, o > 0, l > 0 else { return }
        parallelFor(images * o, minimum: max(1, CPUBackend.parallelThreshold / l)) { lo, hi in
            for unit in lo..<hi {
                let b = unit / o, oc = unit % o
                (pc + (oc * images + b) * l).update(from: py + ((firstImage + b) * o + oc) * l, count: l)
            }
        }
        count { $0.launches += 1 }
    }

    func convScatterOutput(chunk: DeviceBuffer, y: DeviceBuffer, bias: DeviceBuffer?, outChannels o: Int, positions l: Int,
                           firstImage: Int, images: Int) {
        guard allocated("convScatterOutput", chunk, y, bias) else { return }
        let py = y.host!, pc = chunk.host!, pb = bias?.host
        guard images > 0, o > 0, l > 0 else { return }
        parallelFor(images * o, minimum: max(1, CPUBackend.parallelThreshold / l)) { lo, hi in
            for unit in lo..<hi {
                let b = unit / o, oc = unit % o
                let dst = py + ((firstImage + b) * o + oc) * l, src = pc + (oc * images + b) * l
                if let pb {
                    let v = pb[oc]
                    for p in 0..<l { dst[p] = src[p] + v }
                } else {
                    dst.update(from: src, count: l)
                }
            }
        }
        count { $0.launches += 1 }
    }
}
