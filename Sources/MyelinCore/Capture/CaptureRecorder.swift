import Foundation
import Synchronization

// Step capture: run a piece of work (a training step's forward, loss and backward) once while recording every
// device call it makes, then replay the record on later steps without building tensors, graph nodes or closures.
//
// While a capture records, every `Device`'s `backend` (what each op calls) is, for the task that captures, a
// `CaptureRecorder`: a proxy that forwards each call to the device's own backend and appends a replay closure
// holding the call's buffers and arguments. The closures keep their `DeviceBuffer`s alive, so every buffer of the
// step is allocated once and the replay writes the same buffers again. Other tasks and threads keep using the real
// backends (the recorder is a task-local value); outside a capture `Device.backend` costs one relaxed atomic load.
//
// What a record cannot hold is refused with a `CaptureError`: a read back to the host (`item()`, `toArray()`),
// whose value the host code may branch on; a host-to-device write (a tensor made from host values inside the
// step), whose values may change from step to step; work on another device; a random seed drawn on the host but
// not given to a device random op. Seeds that change every step (dropout masks, `Random.nextSeed()`) are noted
// with `CaptureHooks.noteSeed` and drawn again, in the same order and by the same code, at each replay.

/// Why a step could not be captured (`Layer.captureStep(loss:optimizer:)` and `fit(capture:)`). Each case names
/// what happened, so the step can be changed or run without capture.
public enum CaptureError: Error, CustomStringConvertible, Equatable {
    /// The step read `elements` values back to the host (`item()`, `toArray()`, `description`, ...): a replay
    /// would not run the host code that used them.
    case hostRead(device: String, elements: Int)
    /// The step made a tensor from `elements` host values (`Tensor([...])`, `Tensor(scalar:)`, `to(_:)`): a
    /// replay would write the same values again although they may change. Make such tensors once, outside.
    case hostWrite(device: String, elements: Int)
    /// The step ran an op on `used` while capturing on `captured`.
    case otherDevice(captured: String, used: String)
    /// `count` random seeds were drawn during the step without reaching a device random op (a host-side
    /// `Tensor.uniform`/`normal`, or a seed transformed before use): a replay could not draw them again.
    case seedNotUsed(count: Int)
    /// A capture was started inside another one.
    case nested
    /// The step replaced state tensors of the model (named by their `stateDict()` keys) instead of updating them
    /// in place: a replay would keep reading the old ones.
    case stateReplaced(keys: [String])
    /// The step needs something capture does not support; the text says what.
    case unsupported(String)

    public var description: String {
        switch self {
        case .hostRead(let device, let n):
            return "step capture on \(device): the step reads \(n) value(s) back to the host (item(), toArray() or printing a tensor); a replay cannot repeat host code that depends on device values. Move the read out of the step, or train without capture"
        case .hostWrite(let device, let n):
            return "step capture on \(device): the step makes a tensor from \(n) host value(s) (Tensor([...]), Tensor(scalar:), to(_:)); a replay would write the same values every step. Make constant tensors once outside the step (or use scalar ops such as x * 2), or train without capture"
        case .otherDevice(let captured, let used):
            return "step capture on \(captured): the step runs an op on another device (\(used)); a captured step must stay on one device"
        case .seedNotUsed(let count):
            return "step capture: \(count) random seed(s) drawn during the step did not reach a device random op (Tensor.uniform/normal draw on the host; use Tensor.deviceUniform); a replay could not draw them again"
        case .nested:
            return "step capture: a capture was started while another one was recording"
        case .stateReplaced(let keys):
            return "step capture: the step replaced the model's state tensor(s) " + keys.map { "'\($0)'" }.joined(separator: ", ")
                + " with new ones instead of updating them in place; a replay would keep using the old tensors"
        case .unsupported(let why):
            return "step capture: \(why)"
        }
    }
}

/// Hooks for host state that changes at every step of a captured computation.
package enum CaptureHooks {
    /// True while the calling task records a capture (one task-local read).
    package static var isRecording: Bool { CaptureRecorder.current != nil }

    /// Says that `seed`, just drawn by host code that advanced its own state, goes to a device random op of the
    /// step being captured; each replay calls `redraw` (which must advance the same state the same way) and uses
    /// its result in place of `seed`. Does nothing outside a capture. Call it only when `isRecording` (building
    /// the closure costs an allocation).
    package static func noteSeed(_ seed: UInt64, redraw: @escaping () -> UInt64) {
        CaptureRecorder.current?.noteSeed(seed, redraw: redraw)
    }
}

/// A recorded computation: replay it to run the same device calls on the same buffers again.
package final class CapturedProgram {
    private let records: [(Backend) -> Void]
    private let redraws: [() -> UInt64]
    private let seeds: SeedSlots
    private let base: Backend
    /// The device the record runs on.
    package let device: Device

    /// How many of the recorded calls replay as prepared launches (OpenCL: kernels with their arguments set once).
    package let preparedCallCount: Int

    fileprivate init(records: [(Backend) -> Void], redraws: [() -> UInt64], seeds: SeedSlots, device: Device,
                     preparedCallCount: Int) {
        self.records = records
        self.preparedCallCount = preparedCallCount
        self.base = device.base
        self.redraws = redraws
        self.seeds = seeds
        self.device = device
    }

    /// The number of recorded device calls (launches, copies, fills).
    package var callCount: Int { records.count }

    /// Draws this step's seeds (in the order the captured step drew them), then enqueues every recorded call.
    package func replay() {
        for i in 0..<redraws.count { seeds.values[i] = redraws[i]() }
        for r in records { r(base) }
        base.flush()  // the device starts on the step now, not when the host next waits
    }
}

/// The seeds a replay draws, read by the recorded random ops.
final class SeedSlots: @unchecked Sendable {
    var values: [UInt64]
    init(count: Int) { values = Array(repeating: 0, count: count) }
}

/// Records the device calls of `body` made on `device` by the calling task.
package enum StepCapture {
    /// Runs `body` once (for real: its results are those of an eager run) while recording every call that reaches
    /// `device`; returns its result and the record, or the `CaptureError` saying why the body did something a
    /// record cannot hold (the body has run all the same: its result is valid for this one run). Errors thrown by
    /// the body are rethrown; a capture inside a capture throws `CaptureError.nested` without running the body.
    package static func record<T>(on device: Device, _ body: () throws -> T) throws
        -> (result: T, program: Result<CapturedProgram, CaptureError>) {
        if CaptureRecorder.current != nil { throw CaptureError.nested }
        let recorder = CaptureRecorder(device: device)
        var devices = Device.created()
        if !devices.contains(where: { $0 === device }) { devices.append(device) }   // a device made privately
        for d in devices { d.activeCaptures.add(1, ordering: .sequentiallyConsistent) }
        let logs = recorder.preparable != nil
        if logs { CaptureRecorder.launchLogging.add(1, ordering: .sequentiallyConsistent) }
        defer {
            for d in devices { d.activeCaptures.subtract(1, ordering: .sequentiallyConsistent) }
            if logs { CaptureRecorder.launchLogging.subtract(1, ordering: .sequentiallyConsistent) }
        }
        let result = try CaptureRecorder.$current.withValue(recorder) { try body() }
        return (result, Result { () throws(CaptureError) -> CapturedProgram in try recorder.finish() })
    }
}

/// A backend whose recorded calls a capture can turn into a cheaper replay than calling the backend again (OpenCL:
/// kernels with their arguments set once). While some capture records, the backend hands each launch it enqueues
/// to `CaptureRecorder.current?.logLaunch(from:_:)`.
protocol CaptureReplayPreparing: AnyObject {
    /// The replay of one recorded call from the launches it logged (in order), or nil to keep the generic one.
    /// A launch argument equal to `seed.value` takes the seed drawn again at each replay from `seed.slots`.
    func preparedReplay(of launches: [Any], seed: (value: UInt64, slots: SeedSlots, slot: Int)?) -> ((Backend) -> Void)?
}

/// The recording proxy of one capture: forwards every call to the device's backend and appends a replay closure.
final class CaptureRecorder: Backend, @unchecked Sendable {
    /// The recorder of the capture the current task runs, if any.
    @TaskLocal static var current: CaptureRecorder?

    /// How many captures record on a backend that logs its launches (`CaptureReplayPreparing`).
    static let launchLogging = Atomic<Int>(0)
    /// Whether a backend should hand its launches to `current` (one relaxed load).
    static var logsLaunches: Bool { launchLogging.load(ordering: .relaxed) > 0 }

    /// What `Device.backend` gives while some capture records: this task's recorder for its device, else the base.
    static func backend(for device: Device) -> Backend {
        guard let recorder = current else { return device.base }
        if recorder.device === device { return recorder }
        recorder.fail(.otherDevice(captured: recorder.device.name, used: device.name))
        return device.base
    }

    let device: Device
    let base: Backend
    private var records: [(Backend) -> Void] = []
    private var failure: CaptureError?
    /// Seeds noted during the step, in draw order, and whether a random op used each.
    private var seedDraws: [(value: UInt64, redraw: () -> UInt64, used: Bool)] = []
    private let seeds = SeedSlots(count: 0)

    /// The base backend when it can prepare replays.
    let preparable: CaptureReplayPreparing?
    /// The launches the base logged during the call being recorded (nil between calls).
    private var pending: [Any]?
    /// How many records are prepared replays.
    private var preparedCount = 0

    init(device: Device) {
        self.device = device
        self.base = device.base
        self.preparable = device.base as? CaptureReplayPreparing
    }

    /// Takes a launch the base backend enqueued for the call being recorded (other backends' are ignored).
    func logLaunch(from backend: AnyObject, _ launch: Any) {
        guard backend === base, pending != nil else { return }
        pending!.append(launch)
    }

    func fail(_ error: CaptureError) { if failure == nil { failure = error } }

    func noteSeed(_ seed: UInt64, redraw: @escaping () -> UInt64) {
        seedDraws.append((seed, redraw, false))
    }

    /// The replayed seed for `seed`: a slot when a noted draw gave it (the first unused one), else nil (a constant).
    private func seedSlot(for seed: UInt64) -> Int? {
        guard let i = seedDraws.firstIndex(where: { !$0.used && $0.value == seed }) else { return nil }
        seedDraws[i].used = true
        return i
    }

    func finish() throws(CaptureError) -> CapturedProgram {
        if let failure { throw failure }
        let unused = seedDraws.filter { !$0.used }.count
        if unused > 0 { throw CaptureError.seedNotUsed(count: unused) }
        seeds.values = Array(repeating: 0, count: seedDraws.count)
        return CapturedProgram(records: records, redraws: seedDraws.map(\.redraw), seeds: seeds, device: device,
                               preparedCallCount: preparedCount)
    }

    /// Runs `call` on the base backend now and appends it for replays.
    @inline(__always) private func run(_ call: @escaping (Backend) -> Void) {
        record(now: call, replay: call, seed: nil)
    }

    /// Runs `now` on the base backend and appends `replay` (or the base's prepared replay of the launches `now`
    /// made, when every command it enqueued was a logged launch).
    private func record(now: (Backend) -> Void, replay: @escaping (Backend) -> Void,
                        seed: (value: UInt64, slots: SeedSlots, slot: Int)?) {
        guard let preparable else {
            now(base)
            records.append(replay)
            return
        }
        pending = []
        let before = base.stats.launches
        now(base)
        let enqueued = base.stats.launches - before
        let launches = pending ?? []
        pending = nil
        if !launches.isEmpty, enqueued == launches.count, let prepared = preparable.preparedReplay(of: launches, seed: seed) {
            records.append(prepared)
            preparedCount += 1
        } else {
            records.append(replay)
        }
    }

    // MARK: Backend: forwarded without recording

    var name: String { base.name }
    var kind: BackendKind { base.kind }
    var details: String { base.details }
    var stats: DeviceStats { base.stats }
    var memory: DeviceMemory { base.memory }
    var convChunkElements: Int { base.convChunkElements }
    func allocate(_ count: Int) -> DeviceBuffer { base.allocate(count) }
    func tryAllocate(_ count: Int) -> DeviceBuffer? { base.tryAllocate(count) }
    func synchronize() { base.synchronize() }
    func flush() { base.flush() }
    func takeFailure() -> DeviceError? { base.takeFailure() }
    func record(_ error: DeviceError) { base.record(error) }

    // MARK: refused

    func write(_ source: UnsafeBufferPointer<Float>, to buffer: DeviceBuffer, offset: Int) {
        fail(.hostWrite(device: name, elements: source.count))
        base.write(source, to: buffer, offset: offset)
    }

    func read(_ buffer: DeviceBuffer, offset: Int, count: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        fail(.hostRead(device: name, elements: count))
        base.read(buffer, offset: offset, count: count, into: destination)
    }

    // MARK: recorded

    func copy(_ source: DeviceBuffer, sourceOffset: Int, to destination: DeviceBuffer, destinationOffset: Int, count: Int) {
        run { $0.copy(source, sourceOffset: sourceOffset, to: destination, destinationOffset: destinationOffset, count: count) }
    }
    func fill(_ buffer: DeviceBuffer, value: Float, offset: Int, count: Int) {
        run { $0.fill(buffer, value: value, offset: offset, count: count) }
    }
    func gemm(_ shape: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer, bias: DeviceBuffer?, activation: Activation) {
        run { $0.gemm(shape, a: a, b: b, c: c, bias: bias, activation: activation) }
    }
    func unary(_ op: UnaryOp, x: DeviceBuffer, out: DeviceBuffer, count: Int) {
        run { $0.unary(op, x: x, out: out, count: count) }
    }
    func activationBackward(_ activation: Activation, x: DeviceBuffer, y: DeviceBuffer, gy: DeviceBuffer,
                            gx: DeviceBuffer, count: Int) {
        run { $0.activationBackward(activation, x: x, y: y, gy: gy, gx: gx, count: count) }
    }
    func binary(_ op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, layout: BroadcastLayout) {
        run { $0.binary(op, a: a, b: b, out: out, layout: layout) }
    }
    func reduce(_ op: ReduceOp, x: DeviceBuffer, out: DeviceBuffer, outer: Int, length: Int, inner: Int) {
        run { $0.reduce(op, x: x, out: out, outer: outer, length: length, inner: inner) }
    }
    func argmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int) {
        run { $0.argmax(x: x, out: out, rows: rows, cols: cols) }
    }
    func softmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int, log: Bool) {
        run { $0.softmax(x: x, out: out, rows: rows, cols: cols, log: log) }
    }
    func softmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer, rows: Int, cols: Int, log: Bool) {
        run { $0.softmaxBackward(y: y, gy: gy, gx: gx, rows: rows, cols: cols, log: log) }
    }
    func causalSoftmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int, queries: Int) {
        run { $0.causalSoftmax(x: x, out: out, rows: rows, cols: cols, queries: queries) }
    }
    func permute(x: DeviceBuffer, out: DeviceBuffer, layout: PermuteLayout) {
        run { $0.permute(x: x, out: out, layout: layout) }
    }
    func attentionForward(_ shape: AttentionShape, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, mask: DeviceBuffer?,
                          out: DeviceBuffer, lse: DeviceBuffer) {
        run { $0.attentionForward(shape, q: q, k: k, v: v, mask: mask, out: out, lse: lse) }
    }
    func attentionBackward(_ shape: AttentionShape, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, mask: DeviceBuffer?,
                           out: DeviceBuffer, lse: DeviceBuffer, gOut: DeviceBuffer, delta: DeviceBuffer,
                           gq: DeviceBuffer, gk: DeviceBuffer, gv: DeviceBuffer) {
        run { $0.attentionBackward(shape, q: q, k: k, v: v, mask: mask, out: out, lse: lse, gOut: gOut, delta: delta,
                                   gq: gq, gk: gk, gv: gv) }
    }
    func layerNormForward(x: DeviceBuffer, y: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer, weight: DeviceBuffer?,
                          bias: DeviceBuffer?, rows: Int, cols: Int, epsilon: Float) {
        run { $0.layerNormForward(x: x, y: y, mean: mean, rstd: rstd, weight: weight, bias: bias, rows: rows, cols: cols, epsilon: epsilon) }
    }
    func layerNormBackwardInput(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer,
                                weight: DeviceBuffer?, gx: DeviceBuffer, rows: Int, cols: Int) {
        run { $0.layerNormBackwardInput(x: x, gy: gy, mean: mean, rstd: rstd, weight: weight, gx: gx, rows: rows, cols: cols) }
    }
    func layerNormBackwardParameters(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer,
                                     gweight: DeviceBuffer?, gbias: DeviceBuffer?, rows: Int, cols: Int) {
        run { $0.layerNormBackwardParameters(x: x, gy: gy, mean: mean, rstd: rstd, gweight: gweight, gbias: gbias, rows: rows, cols: cols) }
    }
    func transpose(x: DeviceBuffer, out: DeviceBuffer, batch: Int, rows: Int, cols: Int) {
        run { $0.transpose(x: x, out: out, batch: batch, rows: rows, cols: cols) }
    }
    func gatherRows(x: DeviceBuffer, rows: Int, indices: DeviceBuffer, out: DeviceBuffer, count: Int, rowSize: Int) {
        run { $0.gatherRows(x: x, rows: rows, indices: indices, out: out, count: count, rowSize: rowSize) }
    }
    func scatterAddRows(gy: DeviceBuffer, indices: DeviceBuffer, out: DeviceBuffer, rows: Int, count: Int, rowSize: Int) {
        run { $0.scatterAddRows(gy: gy, indices: indices, out: out, rows: rows, count: count, rowSize: rowSize) }
    }
    func oneHot(indices: DeviceBuffer, out: DeviceBuffer, count: Int, classes: Int) {
        run { $0.oneHot(indices: indices, out: out, count: count, classes: classes) }
    }
    func randomUniform(out: DeviceBuffer, count: Int, seed: UInt64) {
        let now: (Backend) -> Void = { $0.randomUniform(out: out, count: count, seed: seed) }
        if let slot = seedSlot(for: seed) {
            let seeds = self.seeds
            record(now: now, replay: { $0.randomUniform(out: out, count: count, seed: seeds.values[slot]) },
                   seed: (seed, seeds, slot))
        } else {
            record(now: now, replay: now, seed: nil)
        }
    }
    func optimizerStep(_ step: OptimizerStep, param: DeviceBuffer, grad: DeviceBuffer, count: Int) {
        run { $0.optimizerStep(step, param: param, grad: grad, count: count) }
    }
    func optimizerSteps(_ updates: [OptimizerUpdate]) {
        run { $0.optimizerSteps(updates) }
    }
    func softmaxCrossEntropyBackward(logProbabilities: DeviceBuffer, oneHot: DeviceBuffer, seed: DeviceBuffer,
                                     gx: DeviceBuffer, count: Int, scale: Float) {
        run { $0.softmaxCrossEntropyBackward(logProbabilities: logProbabilities, oneHot: oneHot, seed: seed, gx: gx,
                                             count: count, scale: scale) }
    }
    func flagNonFinite(_ tensors: [(buffer: DeviceBuffer, count: Int)], flag: DeviceBuffer) {
        run { $0.flagNonFinite(tensors, flag: flag) }
    }
    func fitNote(firstBad: DeviceBuffer, parametersBad: DeviceBuffer, loss: DeviceBuffer, lossSum: DeviceBuffer,
                 count: Float, batch: Int, none: Float) {
        run { $0.fitNote(firstBad: firstBad, parametersBad: parametersBad, loss: loss, lossSum: lossSum, count: count,
                         batch: batch, none: none) }
    }
    func accuracyAdd(x: DeviceBuffer, labels: DeviceBuffer, rows: Int, cols: Int, sum: DeviceBuffer) {
        run { $0.accuracyAdd(x: x, labels: labels, rows: rows, cols: cols, sum: sum) }
    }
    func im2col(x: DeviceBuffer, cols: DeviceBuffer, geometry: ConvGeometry, padValue: Float) {
        run { $0.im2col(x: x, cols: cols, geometry: geometry, padValue: padValue) }
    }
    func col2im(cols: DeviceBuffer, x: DeviceBuffer, geometry: ConvGeometry) {
        run { $0.col2im(cols: cols, x: x, geometry: geometry) }
    }
    func usesLibraryConvolution(_ geometry: ConvGeometry, outChannels: Int) -> Bool {
        base.usesLibraryConvolution(geometry, outChannels: outChannels)
    }
    func libraryConv2dForward(x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, y: DeviceBuffer,
                              geometry: ConvGeometry, outChannels: Int) {
        run { $0.libraryConv2dForward(x: x, weight: weight, bias: bias, y: y, geometry: geometry, outChannels: outChannels) }
    }
    func libraryConv2dBackward(x: DeviceBuffer, weight: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer?, gw: DeviceBuffer?,
                               geometry: ConvGeometry, outChannels: Int) {
        run { $0.libraryConv2dBackward(x: x, weight: weight, gy: gy, gx: gx, gw: gw, geometry: geometry, outChannels: outChannels) }
    }
    /// The device's implicit-GEMM forward where it takes the layer (recorded, and replayed as the same launch),
    /// else nothing recorded and false: the chunked path records its launches.
    func convForwardImplicit(x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, y: DeviceBuffer,
                             geometry: ConvGeometry, outChannels: Int) -> Bool {
        var done = false
        record(now: { done = $0.convForwardImplicit(x: x, weight: weight, bias: bias, y: y, geometry: geometry, outChannels: outChannels) },
               replay: { _ = $0.convForwardImplicit(x: x, weight: weight, bias: bias, y: y, geometry: geometry, outChannels: outChannels) },
               seed: nil)
        if !done { records.removeLast() }
        return done
    }
    /// The device's implicit-GEMM gradients where it takes the layer (recorded, replayed as the same launches), else
    /// nothing recorded and false: the chunked path records its launches.
    func convBackwardImplicit(x: DeviceBuffer, weight: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer?, gw: DeviceBuffer?,
                              geometry: ConvGeometry, outChannels: Int) -> Bool {
        var done = false
        record(now: { done = $0.convBackwardImplicit(x: x, weight: weight, gy: gy, gx: gx, gw: gw, geometry: geometry,
                                                     outChannels: outChannels) },
               replay: { _ = $0.convBackwardImplicit(x: x, weight: weight, gy: gy, gx: gx, gw: gw, geometry: geometry,
                                                     outChannels: outChannels) },
               seed: nil)
        if !done { records.removeLast() }
        return done
    }
    func randomCropFlip(x: DeviceBuffer, out: DeviceBuffer, batch: Int, channels: Int, height: Int, width: Int,
                        padding: Int, flip: Bool, seed: UInt64) {
        let now: (Backend) -> Void = {
            $0.randomCropFlip(x: x, out: out, batch: batch, channels: channels, height: height, width: width,
                              padding: padding, flip: flip, seed: seed)
        }
        if let slot = seedSlot(for: seed) {
            let seeds = self.seeds
            record(now: now, replay: {
                $0.randomCropFlip(x: x, out: out, batch: batch, channels: channels, height: height, width: width,
                                  padding: padding, flip: flip, seed: seeds.values[slot])
            }, seed: (seed, seeds, slot))
        } else {
            record(now: now, replay: now, seed: nil)
        }
    }
    func batchNormMoments(x: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, running: BatchNormRunning?,
                          outer: Int, channels: Int, inner: Int) {
        run { $0.batchNormMoments(x: x, mean: mean, variance: variance, running: running, outer: outer, channels: channels,
                                  inner: inner) }
    }
    func batchNormApply(x: DeviceBuffer, y: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, weight: DeviceBuffer,
                        bias: DeviceBuffer, residual: DeviceBuffer?, relu: Bool, epsilon: Float, outer: Int, channels: Int,
                        inner: Int) {
        run { $0.batchNormApply(x: x, y: y, mean: mean, variance: variance, weight: weight, bias: bias, residual: residual,
                                relu: relu, epsilon: epsilon, outer: outer, channels: channels, inner: inner) }
    }
    func batchNormBackwardSums(x: DeviceBuffer, gy: DeviceBuffer, mask: DeviceBuffer?, mean: DeviceBuffer,
                               variance: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer, epsilon: Float,
                               outer: Int, channels: Int, inner: Int) {
        run { $0.batchNormBackwardSums(x: x, gy: gy, mask: mask, mean: mean, variance: variance, gweight: gweight,
                                       gbias: gbias, epsilon: epsilon, outer: outer, channels: channels, inner: inner) }
    }
    func batchNormBackwardInput(x: DeviceBuffer, gy: DeviceBuffer, mask: DeviceBuffer?, mean: DeviceBuffer,
                                variance: DeviceBuffer, weight: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer,
                                gx: DeviceBuffer, gresidual: DeviceBuffer?, epsilon: Float, batchStatistics: Bool,
                                outer: Int, channels: Int, inner: Int) {
        run { $0.batchNormBackwardInput(x: x, gy: gy, mask: mask, mean: mean, variance: variance, weight: weight,
                                        gweight: gweight, gbias: gbias, gx: gx, gresidual: gresidual, epsilon: epsilon,
                                        batchStatistics: batchStatistics, outer: outer, channels: channels, inner: inner) }
    }
    func maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, geometry: ConvGeometry) {
        run { $0.maxPoolForward(x: x, y: y, argmax: argmax, geometry: geometry) }
    }
    func maxPoolBackward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer,
                         geometry: ConvGeometry) {
        run { $0.maxPoolBackward(x: x, y: y, argmax: argmax, gy: gy, gx: gx, geometry: geometry) }
    }
    func convUnfold(x: DeviceBuffer, cols: DeviceBuffer, geometry: ConvGeometry, firstImage: Int, images: Int) {
        run { $0.convUnfold(x: x, cols: cols, geometry: geometry, firstImage: firstImage, images: images) }
    }
    func convFold(cols: DeviceBuffer, x: DeviceBuffer, geometry: ConvGeometry, firstImage: Int, images: Int) {
        run { $0.convFold(cols: cols, x: x, geometry: geometry, firstImage: firstImage, images: images) }
    }
    func convGatherOutput(y: DeviceBuffer, chunk: DeviceBuffer, outChannels: Int, positions: Int, firstImage: Int, images: Int) {
        run { $0.convGatherOutput(y: y, chunk: chunk, outChannels: outChannels, positions: positions,
                                  firstImage: firstImage, images: images) }
    }
    func convScatterOutput(chunk: DeviceBuffer, y: DeviceBuffer, bias: DeviceBuffer?, outChannels: Int, positions: Int,
                           firstImage: Int, images: Int) {
        run { $0.convScatterOutput(chunk: chunk, y: y, bias: bias, outChannels: outChannels, positions: positions,
                                   firstImage: firstImage, images: images) }
    }
}
