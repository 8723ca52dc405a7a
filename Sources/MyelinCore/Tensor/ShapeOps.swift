import Foundation

// Reshaping, reductions, softmax, transposes, concatenation, slicing, gathering and one-hot.

extension Tensor {
    // MARK: reshape

    /// The same data with another shape (no copy). One dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = checkedElementCount(s.enumerated().filter { $0.offset != i }.map(\.element)) ?? 0
            guard known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch(op: "reshape", "have different element counts", shape, newShape)
            }
            s[i] = count / known
        }
        guard checkedElementCount(s) == count else {
            throw TensorError.shapeMismatch(op: "reshape", "have different element counts", shape, newShape)
        }
        let out = Tensor(shape: s, device: device, buffer: buffer)
        let original = shape
        return out.recorded("reshape", [self]) { g in [try g.reshaped(original)] }
    }

    /// Collapses every dimension after the first: [N, d1, d2, ...] -> [N, d1·d2·...] (a scalar becomes [1, 1]).
    public func flattened() -> Tensor {
        let rows = shape.first ?? 1
        return try! reshaped([rows, shape.dropFirst().reduce(1, *)])  // same element count by construction
    }

    // MARK: reductions

    func normalizedAxis(_ axis: Int, _ op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < rank else { throw TensorError.invalidAxis(op: op, axis: axis, rank: rank) }
        return a
    }

    /// Reduces over one axis; the axis is kept with size 1 when `keepDims`.
    func reduced(_ op: ReduceOp, axis: Int, keepDims: Bool, name: String) throws -> Tensor {
        let a = try normalizedAxis(axis, name)
        let outer = shape[..<a].reduce(1, *), length = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        if length == 0 && outer * inner > 0 && (op == .max || op == .min) {
            throw TensorError.invalidShape(op: name, shape, "has no elements along axis \(axis) to take the \(name) of")
        }
        var outShape = shape
        if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) }
        let out = Tensor.empty(outShape, on: device)
        backend.reduce(op, x: buffer, out: out.buffer, outer: outer, length: length, inner: inner)
        return out
    }

    /// Sum over one axis.
    public func sum(axis: Int, keepDims: Bool = false) throws -> Tensor {
        let y = try reduced(.sum, axis: axis, keepDims: keepDims, name: "sum")
        let a = try normalizedAxis(axis, "sum")
        return y.recorded("sum", [self]) { g in [try self.expandGradient(g, axis: a)] }
    }

    /// Mean over one axis.
    public func mean(axis: Int, keepDims: Bool = false) throws -> Tensor {
        let y = try reduced(.mean, axis: axis, keepDims: keepDims, name: "mean")
        let a = try normalizedAxis(axis, "mean")
        let n = Float(shape[a])
        return y.recorded("mean", [self]) { g in [try self.expandGradient(g, axis: a) / n] }
    }

    /// Maximum over one axis; the gradient is shared equally by the positions that hold the maximum.
    public func max(axis: Int, keepDims: Bool = false) throws -> Tensor {
        let y = try reduced(.max, axis: axis, keepDims: keepDims, name: "max")
        let a = try normalizedAxis(axis, "max")
        return y.recorded("max", [self]) { [unowned y] g in [try self.extremumGradient(g, y: y.detach(), axis: a)] }
    }

    /// Minimum over one axis; the gradient is shared equally by the positions that hold the minimum.
    public func min(axis: Int, keepDims: Bool = false) throws -> Tensor {
        let y = try reduced(.min, axis: axis, keepDims: keepDims, name: "min")
        let a = try normalizedAxis(axis, "min")
        return y.recorded("min", [self]) { [unowned y] g in [try self.extremumGradient(g, y: y.detach(), axis: a)] }
    }

    /// The gradient of a max or min y over `axis`: g split equally among the positions equal to y
    /// (a tie of k positions gives each g/k, so the gradient stays a valid subgradient).
    private func extremumGradient(_ g: Tensor, y: Tensor, axis: Int) throws -> Tensor {
        var kept = shape; kept[axis] = 1
        let mask = try detach().equal(y.reshaped(kept))
        let ties = try mask.sum(axis: axis, keepDims: true)
        return try expandGradient(g, axis: axis) * (mask / ties)
    }

    /// Sum of all elements (a scalar).
    public func sum() -> Tensor {
        let y = try! flatAll().reduced(.sum, axis: 0, keepDims: false, name: "sum")
        return y.recorded("sum", [self]) { g in [try g.broadcast(to: self.shape)] }
    }

    /// Mean of all elements (a scalar).
    public func mean() -> Tensor {
        let y = try! flatAll().reduced(.mean, axis: 0, keepDims: false, name: "mean")
        let n = Float(Swift.max(count, 1))
        return y.recorded("mean", [self]) { g in [try g.broadcast(to: self.shape) / n] }
    }

    /// Maximum of all elements (a scalar); throws for an empty tensor.
    public func max() throws -> Tensor {
        guard count > 0 else { throw TensorError.invalidShape(op: "max", shape, "has no elements to take the max of") }
        return try reshaped([count]).max(axis: 0)
    }

    /// Minimum of all elements (a scalar); throws for an empty tensor.
    public func min() throws -> Tensor {
        guard count > 0 else { throw TensorError.invalidShape(op: "min", shape, "has no elements to take the min of") }
        return try reshaped([count]).min(axis: 0)
    }

    private func flatAll() -> Tensor { Tensor(shape: [count], device: device, buffer: buffer) }

    /// The gradient of a reduction over `axis`, stretched back to this tensor's shape.
    func expandGradient(_ g: Tensor, axis: Int) throws -> Tensor {
        var kept = shape; kept[axis] = 1
        return try g.reshaped(kept).broadcast(to: shape)
    }

    /// This tensor stretched to a larger shape by broadcasting (a copy).
    public func broadcast(to target: [Int]) throws -> Tensor {
        if target == shape { return self }
        guard target.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.shapeMismatch(op: "broadcast", "do not broadcast (a negative size)", shape, target)
        }
        guard checkedElementCount(target) != nil else {
            throw TensorError.invalidShape(op: "broadcast", target, "has more elements than a 64-bit count can hold")
        }
        if count == 1 && rank <= target.count {
            // One value (the gradient of a full reduction): fill the target from it, without working out a
            // broadcast. max(x, x) = x exactly, so the operand itself serves as the second input.
            let y = try Tensor.checkedEmpty(target, on: device, op: "broadcast of \(shape) to \(target)")
            let n = y.count
            backend.binary(.maximum, a: buffer, b: buffer, out: y.buffer,
                           layout: BroadcastLayout(dims: [n], stridesA: [0], stridesB: [0]))
            return y.recorded("broadcast", [self]) { g in [try g.sumToShape(self.shape)] }
        }
        let zero = Tensor.zeros([1], on: device)
        guard let (out, layout) = BroadcastLayout.make(shape, target), out == target else {
            throw TensorError.shapeMismatch(op: "broadcast", "do not broadcast", shape, target)
        }
        if layout.dims.count > 4 && device.isOpenCL {
            throw TensorError.shapeMismatch(op: "broadcast", "broadcast over more than 4 separate dimensions, which is not supported", shape, target)
        }
        let y = try Tensor.checkedEmpty(target, on: device, op: "broadcast of \(shape) to \(target)")
        var l = layout
        l.stridesB = l.stridesB.map { _ in 0 }
        backend.binary(.add, a: buffer, b: zero.buffer, out: y.buffer, layout: l)
        return y.recorded("broadcast", [self]) { g in [try g.sumToShape(self.shape)] }
    }

    /// Sums a broadcast result back down to `target` (the backward of broadcasting).
    public func sumToShape(_ target: [Int]) throws -> Tensor {
        if shape == target { return self }
        var t = self
        // Drop leading dimensions that the target does not have.
        while t.rank > target.count { t = try t.sum(axis: 0) }
        for (i, size) in target.enumerated() where size == 1 && t.shape[i] != 1 {
            t = try t.sum(axis: i, keepDims: true)
        }
        guard t.shape == target else {
            throw TensorError.shapeMismatch(op: "sumToShape", "do not broadcast", shape, target)
        }
        return t
    }

    /// Index of the largest value along the last axis, as whole numbers stored in Float (no gradient);
    /// throws when that axis is empty.
    public func argmax() throws -> Tensor {
        let cols = shape.last ?? 1
        if cols == 0 && shape.dropLast().reduce(1, *) > 0 {
            throw TensorError.invalidShape(op: "argmax", shape, "has an empty last axis: no largest value to point at")
        }
        let out = Tensor.empty(Array(shape.dropLast()), on: device)
        backend.argmax(x: buffer, out: out.buffer, rows: count / Swift.max(cols, 1), cols: cols)
        return out
    }

    // MARK: softmax

    /// Softmax over the last axis, numerically stable.
    public func softmax() -> Tensor { softmaxed(log: false) }

    /// Log-softmax over the last axis, numerically stable.
    public func logSoftmax() -> Tensor { softmaxed(log: true) }

    private func softmaxed(log: Bool) -> Tensor {
        let cols = shape.last ?? 1, rows = count / Swift.max(cols, 1)
        let y = Tensor.empty(shape, on: device)
        backend.softmax(x: buffer, out: y.buffer, rows: rows, cols: cols, log: log)
        return y.recorded(log ? "logSoftmax" : "softmax", [self]) { [unowned y] g in
            let gx = Tensor.empty(self.shape, on: self.device)
            self.backend.softmaxBackward(y: y.buffer, gy: g.buffer, gx: gx.buffer, rows: rows, cols: cols, log: log)
            return [gx]
        }
    }

    // MARK: layout

    /// Swaps the last two axes (a copy); throws for a tensor of rank 0 or 1.
    public func transposed() throws -> Tensor {
        guard rank >= 2 else {
            throw TensorError.invalidShape(op: "transposed", shape, "has rank \(rank), transposed() needs rank 2 or more (use reshaped([1, n]) for a row)")
        }
        let rows = shape[rank - 2], cols = shape[rank - 1]
        var outShape = shape
        outShape.swapAt(rank - 2, rank - 1)
        let y = Tensor.empty(outShape, on: device)
        backend.transpose(x: buffer, out: y.buffer, batch: count / Swift.max(rows * cols, 1), rows: rows, cols: cols)
        return y.recorded("transpose", [self]) { g in [try g.transposed()] }
    }

    /// Joins tensors along the first axis; all other dimensions must agree.
    public static func concat(_ tensors: [Tensor]) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError.invalidShape(op: "concat", [], "needs at least one tensor") }
        let rest = Array(first.shape.dropFirst())
        for t in tensors.dropFirst() {
            try first.checkSameDevice(t, "concat")
            guard t.rank == first.rank, Array(t.shape.dropFirst()) == rest else {
                throw TensorError.shapeMismatch(op: "concat", "differ after the first axis", first.shape, t.shape)
            }
        }
        let (total, overflow) = tensors.reduce((0, false)) { sum, t in
            let (s, o) = sum.0.addingReportingOverflow(t.shape.first ?? 0)
            return (s, sum.1 || o)
        }
        if overflow { throw DeviceError.sizeOverflow(what: "concat of \(tensors.count) tensors", shape: [Int.max] + rest) }
        let y = try Tensor.checkedEmpty([total] + rest, on: first.device, op: "concat of \(tensors.count) tensors")
        var offset = 0
        for t in tensors {
            first.backend.copy(t.buffer, sourceOffset: 0, to: y.buffer, destinationOffset: offset, count: t.count)
            offset += t.count
        }
        return y.recorded("concat", tensors) { g in
            var start = 0
            return try tensors.map { t in
                let n = t.shape.first ?? 0
                defer { start += n }
                return try g.slice(start..<(start + n))
            }
        }
    }

    /// Rows `range` of the first axis (a copy).
    public func slice(_ range: Range<Int>) throws -> Tensor {
        guard rank >= 1, range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw TensorError.invalidShape(op: "slice", shape, "has no rows \(range.lowerBound)..<\(range.upperBound)")
        }
        let rowSize = count / Swift.max(shape[0], 1)
        let y = Tensor.empty([range.count] + shape.dropFirst(), on: device)
        backend.copy(buffer, sourceOffset: range.lowerBound * rowSize, to: y.buffer, destinationOffset: 0, count: range.count * rowSize)
        y.labelClasses = labelClasses
        return y.recorded("slice", [self]) { g in
            let gx = Tensor.zeros(self.shape, on: self.device)
            self.backend.copy(g.buffer, sourceOffset: 0, to: gx.buffer, destinationOffset: range.lowerBound * rowSize,
                              count: range.count * rowSize)
            return [gx]
        }
    }

    /// Rows of the first axis picked by `indices` (whole numbers stored as Float, any shape): the result has
    /// shape indices.shape + self.shape.dropFirst().
    ///
    /// The index values are on the device and are not checked (that would need a read back on every call):
    /// an index outside 0..<shape[0] (or not a number) gives a row of zeros, and its gradient is dropped.
    /// Use `gather(rows: [Int])` to have host indices checked before they are uploaded.
    public func gather(rows indices: Tensor) throws -> Tensor {
        try checkSameDevice(indices, "gather")
        guard rank >= 1 else { throw TensorError.invalidShape(op: "gather", shape, "has no rows") }
        let rows = shape[0], rowSize = count / Swift.max(rows, 1)
        let y = try Tensor.checkedEmpty(indices.shape + shape.dropFirst(), on: device, op: "gather of \(indices.shape) rows of \(shape)")
        backend.gatherRows(x: buffer, rows: rows, indices: indices.buffer, out: y.buffer, count: indices.count, rowSize: rowSize)
        y.labelClasses = labelClasses
        return y.recorded("gather", [self]) { g in
            let gx = Tensor.zeros(self.shape, on: self.device)
            self.backend.scatterAddRows(gy: g.buffer, indices: indices.buffer, out: gx.buffer, rows: rows,
                                        count: indices.count, rowSize: rowSize)
            return [gx]
        }
    }

    /// Rows of the first axis picked by host `indices`, each checked to be in 0..<shape[0] before the one upload;
    /// the error names the bad index, its position and the range.
    ///
    /// ```swift
    /// let picked = try x.gather(rows: [2, 0, 2])   // x [5, 3] -> [3, 3]
    /// ```
    public func gather(rows indices: [Int]) throws -> Tensor {
        guard rank >= 1 else { throw TensorError.invalidShape(op: "gather", shape, "has no rows") }
        try checkIndices(indices, in: 0..<shape[0], op: "gather", kind: "row index")
        return try gather(rows: Tensor(indices.map(Float.init), on: device))
    }

    /// One-hot rows [..., classes] from whole-number labels (no gradient); throws unless `classes` > 0.
    ///
    /// The labels are on the device and are not checked (no read back): a label outside 0..<classes (or not a
    /// whole number) gives a row of zeros. Labels made with `Tensor(labels:classes:)`, `Tensor.oneHot(_:classes:)`
    /// or a `Dataset` given `classes:` are checked on the host when uploaded.
    public func oneHot(classes: Int) throws -> Tensor {
        guard classes > 0 else { throw TensorError.invalidShape(op: "oneHot(classes: \(classes))", shape, "needs classes > 0") }
        let y = try Tensor.checkedEmpty(shape + [classes], on: device, op: "oneHot(classes: \(classes)) of \(shape)")
        backend.oneHot(indices: buffer, out: y.buffer, count: count, classes: classes)
        return y
    }

    /// One-hot rows [labels.count, classes] from host labels, each checked to be in 0..<classes first.
    ///
    /// ```swift
    /// let targets = try Tensor.oneHot([2, 0, 1], classes: 3)   // [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    /// ```
    public static func oneHot(_ labels: [Int], classes: Int, on device: Device = .default) throws -> Tensor {
        try Tensor(labels: labels, classes: classes, on: device).oneHot(classes: classes)
    }
}
