import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The per-channel sums of batch normalization (mean and variance, and the backward sums) against a Double
/// reference: a mean large compared with the spread on every device, and on OpenCL the two-stage sums with the
/// number of work-groups per channel forced (PoCL picks one group per channel when there are enough channels).
@Suite struct BatchNormSumsTests {
    /// The Double mean and biased variance of each channel of x [outer, channels, inner].
    static func moments(_ x: [Float], outer: Int, channels: Int, inner: Int) -> (mean: [Double], variance: [Double]) {
        var means: [Double] = [], variances: [Double] = []
        for c in 0..<channels {
            let values = (0..<outer).flatMap { n in (0..<inner).map { Double(x[(n * channels + c) * inner + $0]) } }
            let mean = values.reduce(0, +) / Double(values.count)
            means.append(mean)
            variances.append(values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count))
        }
        return (means, variances)
    }

    /// 1000 + c + noise of spread 0.1: a one-pass sum of squares without a shift loses the variance entirely
    /// (S2/m and mean² agree to about 7 digits, the variance is 1e-6 of them).
    static func largeMeanValues(outer: Int, channels: Int, inner: Int) -> [Float] {
        let noise = testValues(outer * channels * inner, seed: 71)
        return noise.indices.map { Float(1000 + ($0 / inner) % channels) + 0.1 * noise[$0] }
    }

    @Test(arguments: TestDevices.all)
    func varianceStaysAccurateWhenTheMeanIsLarge(device: Device) throws {
        for (n, c, h, w) in [(4, 3, 1, 257), (5, 1, 31, 33), (9, 2, 1, 1)] {
            let xv = Self.largeMeanValues(outer: n, channels: c, inner: h * w)
            let x = try Tensor(xv, shape: [n, c, h, w], on: device)
            let (_, mean, variance) = try x.batchNorm(weight: Tensor.ones([c], on: device), bias: Tensor.zeros([c], on: device),
                                                      statistics: nil, epsilon: 1e-5)
            let r = Self.moments(xv, outer: n, channels: c, inner: h * w)
            expectClose(try mean.toArray(), r.mean, rtol: 1e-6, atol: 0, "\(device) [\(n), \(c), \(h), \(w)] mean")
            expectClose(try variance.toArray(), r.variance, rtol: 1e-4, atol: 1e-7, "\(device) [\(n), \(c), \(h), \(w)] variance")
        }
    }

    /// Every number of work-groups per channel, from 1 to more than there are values (clamped), on odd shapes
    /// whose m the parts do not divide, matches the Double reference: moments (with a large mean too) and the
    /// backward sums.
    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func twoStageSumsMatchTheDoubleReference() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        for (outer, channels, inner) in [(3, 5, 7), (3, 5, 33), (3, 5, 129), (7, 3, 1), (2, 2, 3001), (1, 1, 1)] {
            let count = outer * channels * inner
            for largeMean in [false, true] {
                let xv = largeMean ? Self.largeMeanValues(outer: outer, channels: channels, inner: inner)
                                   : testValues(count, seed: UInt64(count)).map { $0 * 3 + 0.5 }
                let gyv = testValues(count, seed: UInt64(count + 1))
                let r = Self.moments(xv, outer: outer, channels: channels, inner: inner)
                let ones = [Float](repeating: 1, count: channels), zeros = [Float](repeating: 0, count: channels)
                let sums = BatchNormOpTests.reference(xv, gyv, weight: ones, bias: zeros, n: outer, c: channels,
                                                      inner: inner, statistics: nil, epsilon: 1e-5)
                let x = KernelExercise.upload(backend, xv), gy = KernelExercise.upload(backend, gyv)
                for parts in [1, 2, 3, 7, 64, 100_000] {
                    let what = "[\(outer), \(channels), \(inner)] large mean \(largeMean) parts \(parts)"
                    let mean = backend.allocate(channels), variance = backend.allocate(channels)
                    backend.batchNormMoments(x: x, mean: mean, variance: variance, outer: outer, channels: channels,
                                             inner: inner, parts: parts)
                    expectClose(KernelExercise.download(backend, mean, channels), r.mean,
                                rtol: largeMean ? 1e-6 : 1e-5, atol: largeMean ? 0 : 1e-5, "\(what) mean")
                    expectClose(KernelExercise.download(backend, variance, channels), r.variance, rtol: 1e-4, atol: 1e-7,
                                "\(what) variance")
                    guard !largeMean else { continue }   // the gradient sums of a large mean depend on its rounding
                    let gw = backend.allocate(channels), gb = backend.allocate(channels)
                    backend.batchNormBackwardSums(x: x, gy: gy, mean: mean, variance: variance, gweight: gw, gbias: gb,
                                                  epsilon: 1e-5, outer: outer, channels: channels, inner: inner, parts: parts)
                    expectClose(KernelExercise.download(backend, gw, channels), sums.gw, rtol: 1e-4, atol: 1e-4, "\(what) weight sum")
                    expectClose(KernelExercise.download(backend, gb, channels), sums.gb, rtol: 1e-4, atol: 1e-4, "\(what) bias sum")
                }
            }
        }
        #expect(backend.takeFailure() == nil)
    }

    /// PoCL-like devices keep one work-group per channel once there are as many channels as compute units; a GPU
    /// gets several groups per compute unit; no part is smaller than a few values per work-item.
    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func partsFollowTheDevice() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        let units = max(1, backend.info.computeUnits)
        let perUnit = backend.info.isGPU ? OpenCLBackend.batchNormGroupsPerComputeUnit : 1
        let big = 1 << 24
        #expect(backend.channelParts(channels: units * perUnit, values: big, groupSize: 256) == 1)
        #expect(backend.channelParts(channels: 1, values: big, groupSize: 256) == units * perUnit)
        #expect(backend.channelParts(channels: 1, values: 256 * OpenCLBackend.batchNormValuesPerWorkItem * 2 - 1,
                                     groupSize: 256) == 1)
    }
}
