/// The narrow interface every device implements. `Tensor` ops call it; nothing above `Tensor`
/// (layers, losses, optimizers) sees it. Sizes are element counts of `Float`.
/// Every call only enqueues work: nothing waits on the device except `read` and `synchronize`. The calls of the
/// convolution, pooling and batch-normalization layers are grouped in sub-protocols (LayerBackends.swift); the types
/// the calls take are in BackendTypes.swift. docs/BackendCalls.md says how the interface grows.
protocol Backend: AnyObject, Sendable, ConvolutionBackend, PoolingBackend, NormalizationBackend, SequenceBackend {
    /// A short name: `cpu` or `opencl:N`.
    var name: String { get }
    /// The kind of backend.
    var kind: BackendKind { get }
    /// A longer description: the OpenCL device's name and platform, or the CPU's thread count.
    var details: String { get }
    /// Transfer, allocation and launch counters.
    var stats: DeviceStats { get }

    // MARK: memory
    /// The device's memory limits now (see `DeviceMemory`).
    var memory: DeviceMemory { get }
    /// A buffer of at least `count` elements. When the device cannot hold it, or the system or driver refuses the
    /// memory, the refusal is recorded (`record(_:)`) and the buffer has no memory (`DeviceBuffer.unallocated`):
    /// the ops that use it are skipped, and the error is thrown at the next `toArray()`, `item()` or
    /// `Device.check()`. Callers that can throw check with `Device.checkAllocation` first.
    func allocate(_ count: Int) -> DeviceBuffer
    /// A buffer of at least `count` elements, or nil when the device cannot hold it or the system refuses the
    /// memory: the allocation of the throwing ops (`Tensor.checkedEmpty`), which turn nil into an error.
    func tryAllocate(_ count: Int) -> DeviceBuffer?
    /// Copies `source` into `buffer` starting at element `offset` (host to device).
    func write(_ source: UnsafeBufferPointer<Float>, to buffer: DeviceBuffer, offset: Int)
    /// Copies `count` elements from `buffer` at `offset` into `destination` (device to host; waits).
    func read(_ buffer: DeviceBuffer, offset: Int, count: Int, into destination: UnsafeMutableBufferPointer<Float>)
    /// Device-side copy of `count` elements.
    func copy(_ source: DeviceBuffer, sourceOffset: Int, to destination: DeviceBuffer, destinationOffset: Int, count: Int)
    /// Sets `count` elements from `offset` to `value`.
    func fill(_ buffer: DeviceBuffer, value: Float, offset: Int, count: Int)
    /// Waits until every enqueued command has finished.
    func synchronize()
    /// Hands the enqueued commands to the device without waiting (OpenCL: `clFlush`), so that it starts on them
    /// while the host goes on; nothing to do on the CPU.
    func flush()
    /// The first failure since the last call, if any (an allocation the device refused, an op skipped because a
    /// buffer it uses has no memory, an OpenCL enqueue that the driver refused), and forgets it.
    func takeFailure() -> DeviceError?
    /// Keeps `error` as the failure that `takeFailure()` gives next, unless one is kept already (the first wins).
    func record(_ error: DeviceError)

    // MARK: compute
    /// C = act(alpha · op(A) · op(B) + beta · C + bias), batched; see `GemmShape`.
    func gemm(_ shape: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer,
              bias: DeviceBuffer?, activation: Activation)
    /// out[i] = op(x[i]) for i < count.
    func unary(_ op: UnaryOp, x: DeviceBuffer, out: DeviceBuffer, count: Int)
    /// gx[i] = gy[i] · f'(x[i]) for the activation f, using x or y = f(x) as the formula needs.
    func activationBackward(_ activation: Activation, x: DeviceBuffer, y: DeviceBuffer, gy: DeviceBuffer,
                            gx: DeviceBuffer, count: Int)
    /// out = a op b with broadcasting described by `layout`.
    func binary(_ op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, layout: BroadcastLayout)
    /// Reduces x viewed as [outer, length, inner] over the middle axis into out [outer, inner].
    func reduce(_ op: ReduceOp, x: DeviceBuffer, out: DeviceBuffer, outer: Int, length: Int, inner: Int)
    /// out[r] = index of the largest x[r, c] (first one on ties), as a Float.
    func argmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int)
    /// Row-wise softmax (or log-softmax) of x [rows, cols], stable (row max subtracted).
    func softmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int, log: Bool)
    /// Backward of `softmax` from its output y and the output gradient gy.
    func softmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer, rows: Int, cols: Int, log: Bool)
    /// out[b, c, r] = x[b, r, c] for x [batch, rows, cols].
    func transpose(x: DeviceBuffer, out: DeviceBuffer, batch: Int, rows: Int, cols: Int)
    /// out[i, :] = x[indices[i], :] for x [rows, rowSize]; indices are whole numbers stored as Float. An index
    /// outside 0..<rows (or NaN) gives a row of zeros: never a read outside x.
    func gatherRows(x: DeviceBuffer, rows: Int, indices: DeviceBuffer, out: DeviceBuffer, count: Int, rowSize: Int)
    /// out[i, :] += gy[i, :] scattered to rows indices[i] of out [rows, rowSize] (the backward of gatherRows; out
    /// must start zeroed). An index outside 0..<rows (or NaN) is skipped: never a write outside out.
    func scatterAddRows(gy: DeviceBuffer, indices: DeviceBuffer, out: DeviceBuffer, rows: Int, count: Int, rowSize: Int)
    /// out [count, classes] = one-hot rows of the whole-number labels in `indices`; a label that is not a whole
    /// number in 0..<classes gives a row of zeros.
    func oneHot(indices: DeviceBuffer, out: DeviceBuffer, count: Int, classes: Int)
    /// out[i] = uniform in [0, 1) from a counter-based hash of (seed, i): identical on every device.
    func randomUniform(out: DeviceBuffer, count: Int, seed: UInt64)

    // MARK: optimizer updates (Sources/Myelin/NN/Optimizers.swift; kernels in Kernels/optimizers.cl)

    /// One fused optimizer update of `count` elements: one launch (one loop on the CPU) that updates `param` and
    /// the step's state buffers in place from `grad`. Hyperparameters and step-dependent factors come from the
    /// host (no device reads); see `OptimizerStep` and OptimizerStepParameters.swift.
    func optimizerStep(_ step: OptimizerStep, param: DeviceBuffer, grad: DeviceBuffer, count: Int)

    /// Several fused updates (one optimizer step over its parameters): the same results as `optimizerStep` on each,
    /// in fewer launches where the backend can group them (OpenCL: Adam, up to 8 parameters with the same
    /// hyperparameters per launch).
    func optimizerSteps(_ updates: [OptimizerUpdate])

    /// The backward of softmax cross-entropy against labels in one launch: gx = (exp(logProbabilities) − oneHot) ·
    /// (seed[0] · scale) over `count` elements, the same values as those four ops one by one.
    func softmaxCrossEntropyBackward(logProbabilities: DeviceBuffer, oneHot: DeviceBuffer, seed: DeviceBuffer,
                                     gx: DeviceBuffer, count: Int, scale: Float)

    // MARK: fit's per-batch bookkeeping (Sources/Myelin/Training/Fit.swift; kernels in Kernels/optimizers.cl)

    /// Sets flag[0] to 1 when one of `tensors` (buffers of `count` elements) holds a NaN or an infinity, else
    /// leaves it alone: one launch per `Self.nonFiniteTensorsPerLaunch` tensors (OpenCL), one loop on the CPU.
    func flagNonFinite(_ tensors: [(buffer: DeviceBuffer, count: Int)], flag: DeviceBuffer)
    /// One batch of `fit` in one launch: lossSum[0] += loss[0] · count; firstBad[0] = min(firstBad[0], code) with
    /// code = `none` when loss[0] is finite and parametersBad[0] == 0, 2·batch + 1 when only the parameters are
    /// bad, 2·batch when the loss is not finite; then parametersBad[0] = 0.
    func fitNote(firstBad: DeviceBuffer, parametersBad: DeviceBuffer, loss: DeviceBuffer, lossSum: DeviceBuffer,
                 count: Float, batch: Int, none: Float)
    /// sum[0] += the number of rows of x [rows, cols] whose first largest value is at the column `labels` names
    /// (whole numbers stored as Float): the accuracy metric's batch sum added in one launch.
    func accuracyAdd(x: DeviceBuffer, labels: DeviceBuffer, rows: Int, cols: Int, sum: DeviceBuffer)

    // MARK: augmentation (Kernels/augment.cl)
    /// Random crop with zero padding and random horizontal flip of images x [N, C, H, W] into out (same shape), in
    /// one launch: image n's draws come from `AugmentDraw(seed:image:)` (a counter-based hash, the same on every
    /// device), and out[n, c, y, x] = x[n, c, y + dy − padding, x' + dx − padding] with x' = W − 1 − x when flipped
    /// (else x), or 0 where that lies outside the image.
    func randomCropFlip(x: DeviceBuffer, out: DeviceBuffer, batch: Int, channels: Int, height: Int, width: Int,
                        padding: Int, flip: Bool, seed: UInt64)
}

extension Backend {
    /// A device whose `allocate` never stops the program for a refused request (OpenCL records it and fails the
    /// next `Device.check()`) answers through it.
    func tryAllocate(_ count: Int) -> DeviceBuffer? {
        Device.allocationFits(count, memory: memory) ? allocate(count) : nil
    }
}
