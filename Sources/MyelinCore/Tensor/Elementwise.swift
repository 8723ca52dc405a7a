import Foundation

// Elementwise ops with their backward formulas beside them.

extension Tensor {
    // MARK: unary

    func mapped(_ op: UnaryOp) -> Tensor {
        let out = Tensor.empty(shape, on: device)
        backend.unary(op, x: buffer, out: out.buffer, count: count)
        return out
    }

    /// `mapped` allocating through the check, for the backward formulas (which throw): `name` is the op.
    func checkedMapped(_ op: UnaryOp, _ name: String) throws -> Tensor {
        let out = try Tensor.checkedEmpty(shape, on: device, op: "backward through \(name)")
        backend.unary(op, x: buffer, out: out.buffer, count: count)
        return out
    }

    /// Elementwise -x (also written `-x`).
    public func negated() -> Tensor {
        mapped(.negate).recorded("negate", [self]) { g in [try g.checkedMapped(.negate, "negate")] }
    }

    /// Elementwise eˣ.
    public func exp() -> Tensor {
        let y = mapped(.exp)
        return y.recorded("exp", [self]) { [unowned y] g in [try g * y.detach()] }
    }

    /// Elementwise natural logarithm (NaN below 0, -inf at 0, as in IEEE arithmetic).
    public func log() -> Tensor {
        mapped(.log).recorded("log", [self]) { g in [try g / self.detach()] }
    }

    /// Elementwise square root (NaN below 0).
    public func sqrt() -> Tensor {
        let y = mapped(.sqrt)
        return y.recorded("sqrt", [self]) { [unowned y] g in [try g / (y.detach() * 2)] }
    }

    /// Elementwise 1 / √x (NaN below 0, +inf at 0), as `torch.rsqrt`; the gradient is −y³/2 with y = 1 / √x.
    ///
    /// ```swift
    /// let inverseStd = try (variance + 1e-5).rsqrt()   // a normalization's scale
    /// ```
    public func rsqrt() -> Tensor {
        let y = mapped(.rsqrt)
        return y.recorded("rsqrt", [self]) { [unowned y] g in [try g * (y.detach().pow(3) * -0.5)] }
    }

    /// Elementwise |x|; the gradient is sign(x) (0 at 0).
    public func abs() -> Tensor {
        mapped(.abs).recorded("abs", [self]) { g in [try g * self.detach().checkedMapped(.sign, "abs")] }
    }

    /// Elementwise x².
    public func square() -> Tensor {
        mapped(.square).recorded("square", [self]) { g in [try g * (self.detach() * 2)] }
    }

    /// Elementwise sign: -1, 0 or 1 (no gradient).
    public func sign() -> Tensor { mapped(.sign) }

    /// Values limited to [min, max]; the gradient flows where the input was inside.
    public func clamp(min lo: Float = -.infinity, max hi: Float = .infinity) -> Tensor {
        mapped(.clamp(min: lo, max: hi)).recorded("clamp", [self]) { g in
            let x = self.detach()
            let inside = try x.greaterEqual(lo) * x.lessEqual(hi)
            return [try g * inside]
        }
    }

    /// x ** p for a scalar exponent.
    public func pow(_ p: Float) -> Tensor {
        mapped(.scalar(.power, p, scalarFirst: false)).recorded("pow", [self]) { g in
            [try g * (self.detach().pow(p - 1) * p)]
        }
    }

    // MARK: activations

    /// Applies an activation function. `.step` has no gradient: backward through it is an error.
    public func activation(_ a: Activation) -> Tensor {
        let y = mapped(.activation(a))
        return y.recorded(a.kernelName, [self]) { [unowned y] g in
            if let error = a.missingGradientError { throw error }
            return [try self.checkedActivationGradient(a, y: y.detach(), gy: g)]
        }
    }

    /// gx = gy * f'(x) for x = self and y = f(x).
    func activationGradient(_ a: Activation, y: Tensor, gy: Tensor) -> Tensor {
        activationGradient(a, y: y, gy: gy, into: Tensor.empty(shape, on: device))
    }

    /// `activationGradient` allocated through the check, for the backward formulas (which throw).
    func checkedActivationGradient(_ a: Activation, y: Tensor, gy: Tensor) throws -> Tensor {
        activationGradient(a, y: y, gy: gy, into: try Tensor.checkedEmpty(shape, on: device, op: "backward through \(a.kernelName)"))
    }

    private func activationGradient(_ a: Activation, y: Tensor, gy: Tensor, into gx: Tensor) -> Tensor {
        backend.activationBackward(a, x: buffer, y: y.buffer, gy: gy.buffer, gx: gx.buffer, count: count)
        return gx
    }

    /// Heaviside step: 1 where x > 0, else 0. It has no gradient (backward through it throws).
    public func step() -> Tensor { activation(.step) }
    /// Elementwise 1 / (1 + e⁻ˣ).
    public func sigmoid() -> Tensor { activation(.sigmoid) }
    /// Elementwise hyperbolic tangent.
    public func tanh() -> Tensor { activation(.tanh) }
    /// Elementwise max(x, 0).
    public func relu() -> Tensor { activation(.relu) }
    /// Elementwise x where x > 0, else `slope`·x (default 0.01, as PyTorch's `LeakyReLU`).
    public func leakyRelu(slope: Float = 0.01) -> Tensor { activation(.leakyRelu(slope: slope)) }
    /// Elementwise x where x > 0, else `alpha`·(eˣ − 1) (default 1, as PyTorch's `ELU`).
    public func elu(alpha: Float = 1) -> Tensor { activation(.elu(alpha: alpha)) }
    /// Elementwise SELU: λ·(x where x > 0, else α·(eˣ − 1)), λ ≈ 1.0507, α ≈ 1.6733.
    public func selu() -> Tensor { activation(.selu) }
    /// Elementwise log(1 + eˣ), computed stably.
    public func softplus() -> Tensor { activation(.softplus) }
    /// GELU; `approximate: true` uses the tanh approximation, `false` the exact erf form.
    public func gelu(approximate: Bool = false) -> Tensor { activation(approximate ? .geluTanh : .geluErf) }
    /// SiLU (swish): x·σ(x), as `torch.nn.functional.silu`.
    public func silu() -> Tensor { activation(.silu) }

    // MARK: binary

    /// a op b with numpy broadcasting (trailing dimensions aligned; size-1 dimensions stretch).
    func elementwise(_ op: BinaryOp, _ other: Tensor, name: String) throws -> (Tensor, BroadcastLayout) {
        try checkSameDevice(other, name)
        if shape == other.shape {
            // Same shapes: one flat elementwise loop, without working out a broadcast.
            let layout = BroadcastLayout.flat(count)
            let out = try Tensor.checkedEmpty(shape, on: device, op: name)
            backend.binary(op, a: buffer, b: other.buffer, out: out.buffer, layout: layout)
            return (out, layout)
        }
        guard let (outShape, layout) = BroadcastLayout.make(shape, other.shape) else {
            throw TensorError.shapeMismatch(op: name, "do not broadcast", shape, other.shape)
        }
        if layout.dims.count > 4 && device.isOpenCL {
            throw TensorError.shapeMismatch(op: name, "broadcast over more than 4 separate dimensions, which is not supported", shape, other.shape)
        }
        let out = try Tensor.checkedEmpty(outShape, on: device, op: "\(name) of \(shape) and \(other.shape)")
        backend.binary(op, a: buffer, b: other.buffer, out: out.buffer, layout: layout)
        return (out, layout)
    }

    /// Elementwise sum with broadcasting (trailing dimensions aligned, size-1 dimensions stretch).
    /// Throws `TensorError.shapeMismatch` when the shapes do not broadcast, `deviceMismatch` across devices.
    ///
    /// ```swift
    /// let y = try x + bias   // [batch, n] + [n]
    /// ```
    public static func + (a: Tensor, b: Tensor) throws -> Tensor {
        let (y, _) = try a.elementwise(.add, b, name: "add")
        return y.recorded("add", [a, b]) { g in
            [a.requiresGrad ? try g.sumToShape(a.shape) : nil, b.requiresGrad ? try g.sumToShape(b.shape) : nil]
        }
    }

    /// Elementwise difference with broadcasting; throws like `+`.
    public static func - (a: Tensor, b: Tensor) throws -> Tensor {
        let (y, _) = try a.elementwise(.subtract, b, name: "subtract")
        // Only the operands that need a gradient get one: `prediction - target` negates nothing for the target.
        return y.recorded("subtract", [a, b]) { g in
            [a.requiresGrad ? try g.sumToShape(a.shape) : nil, b.requiresGrad ? try g.negated().sumToShape(b.shape) : nil]
        }
    }

    /// Elementwise (Hadamard) product with broadcasting; throws like `+`. For matrix products see `matmul`.
    public static func * (a: Tensor, b: Tensor) throws -> Tensor {
        let (y, _) = try a.elementwise(.multiply, b, name: "multiply")
        return y.recorded("multiply", [a, b]) { g in
            [a.requiresGrad ? try (g * b.detach()).sumToShape(a.shape) : nil,
             b.requiresGrad ? try (g * a.detach()).sumToShape(b.shape) : nil]
        }
    }

    /// Elementwise quotient with broadcasting; throws like `+`.
    public static func / (a: Tensor, b: Tensor) throws -> Tensor {
        let (y, _) = try a.elementwise(.divide, b, name: "divide")
        return y.recorded("divide", [a, b]) { g in
            let bd = b.detach()
            return [a.requiresGrad ? try (g / bd).sumToShape(a.shape) : nil,
                    b.requiresGrad ? try (g * a.detach() / (bd * bd)).negated().sumToShape(b.shape) : nil]
        }
    }

    /// Elementwise a ** b with broadcasting.
    public func pow(_ exponent: Tensor) throws -> Tensor {
        let (y, _) = try elementwise(.power, exponent, name: "pow")
        return y.recorded("pow", [self, exponent]) { [unowned y] g in
            let a = self.detach(), b = exponent.detach()
            return [self.requiresGrad ? try (g * b * a.pow(b - 1)).sumToShape(self.shape) : nil,
                    exponent.requiresGrad ? try (g * y.detach() * a.log()).sumToShape(exponent.shape) : nil]
        }
    }

    /// Elementwise maximum; the gradient goes to the larger input (to `self` on ties).
    public func maximum(_ other: Tensor) throws -> Tensor {
        let (y, _) = try elementwise(.maximum, other, name: "maximum")
        return y.recorded("maximum", [self, other]) { g in
            let mask = try self.detach().greaterEqual(other.detach())
            return [self.requiresGrad ? try (g * mask).sumToShape(self.shape) : nil,
                    other.requiresGrad ? try (g * (1 - mask)).sumToShape(other.shape) : nil]
        }
    }

    /// Elementwise minimum; the gradient goes to the smaller input (to `self` on ties).
    public func minimum(_ other: Tensor) throws -> Tensor {
        let (y, _) = try elementwise(.minimum, other, name: "minimum")
        return y.recorded("minimum", [self, other]) { g in
            let mask = try self.detach().lessEqual(other.detach())
            return [self.requiresGrad ? try (g * mask).sumToShape(self.shape) : nil,
                    other.requiresGrad ? try (g * (1 - mask)).sumToShape(other.shape) : nil]
        }
    }

    // Comparisons: 1 where true, 0 elsewhere; no gradient.
    /// 1 where x == other, else 0, with broadcasting; no gradient. Throws like `+`.
    public func equal(_ o: Tensor) throws -> Tensor { try elementwise(.equal, o, name: "equal").0 }
    /// 1 where x != other, else 0, with broadcasting; no gradient. Throws like `+`.
    public func notEqual(_ o: Tensor) throws -> Tensor { try elementwise(.notEqual, o, name: "notEqual").0 }
    /// 1 where x < other, else 0, with broadcasting; no gradient. Throws like `+`.
    public func less(_ o: Tensor) throws -> Tensor { try elementwise(.less, o, name: "less").0 }
    /// 1 where x <= other, else 0, with broadcasting; no gradient. Throws like `+`.
    public func lessEqual(_ o: Tensor) throws -> Tensor { try elementwise(.lessEqual, o, name: "lessEqual").0 }
    /// 1 where x > other, else 0, with broadcasting; no gradient. Throws like `+`.
    public func greater(_ o: Tensor) throws -> Tensor { try elementwise(.greater, o, name: "greater").0 }
    /// 1 where x >= other, else 0, with broadcasting; no gradient. Throws like `+`.
    public func greaterEqual(_ o: Tensor) throws -> Tensor { try elementwise(.greaterEqual, o, name: "greaterEqual").0 }
    /// 1 where x == s, else 0; no gradient.
    public func equal(_ s: Float) -> Tensor { mapped(.scalar(.equal, s, scalarFirst: false)) }
    /// 1 where x < s, else 0; no gradient.
    public func less(_ s: Float) -> Tensor { mapped(.scalar(.less, s, scalarFirst: false)) }
    /// 1 where x <= s, else 0; no gradient.
    public func lessEqual(_ s: Float) -> Tensor { mapped(.scalar(.lessEqual, s, scalarFirst: false)) }
    /// 1 where x > s, else 0; no gradient.
    public func greater(_ s: Float) -> Tensor { mapped(.scalar(.greater, s, scalarFirst: false)) }
    /// 1 where x >= s, else 0; no gradient.
    public func greaterEqual(_ s: Float) -> Tensor { mapped(.scalar(.greaterEqual, s, scalarFirst: false)) }

    // MARK: with a scalar

    /// Adds the scalar `s` to every element.
    public static func + (a: Tensor, s: Float) -> Tensor {
        a.mapped(.scalar(.add, s, scalarFirst: false)).recorded("add", [a]) { g in [g] }
    }
    /// Adds the scalar `s` to every element.
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    /// Subtracts the scalar `s` from every element.
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    /// s − x for every element x.
    public static func - (s: Float, a: Tensor) -> Tensor {
        a.mapped(.scalar(.subtract, s, scalarFirst: true)).recorded("subtract", [a]) { g in [g.negated()] }
    }
    /// Multiplies every element by the scalar `s`.
    public static func * (a: Tensor, s: Float) -> Tensor {
        a.mapped(.scalar(.multiply, s, scalarFirst: false)).recorded("multiply", [a]) { g in [g * s] }
    }
    /// Multiplies every element by the scalar `s`.
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    /// Divides every element by the scalar `s` (computed as a product with 1 / s).
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    /// s / x for every element x.
    public static func / (s: Float, a: Tensor) -> Tensor {
        a.mapped(.scalar(.divide, s, scalarFirst: true)).recorded("divide", [a]) { g in
            let x = a.detach()
            return [try g * (x * x).mapped(.scalar(.divide, -s, scalarFirst: true))]
        }
    }
    /// Elementwise -x (`negated()`).
    public static prefix func - (a: Tensor) -> Tensor { a.negated() }

    /// Elementwise max(x, s).
    public func maximum(_ s: Float) -> Tensor {
        mapped(.scalar(.maximum, s, scalarFirst: false)).recorded("maximum", [self]) { g in
            [try g * self.detach().greaterEqual(s)]
        }
    }

    /// Elementwise min(x, s).
    public func minimum(_ s: Float) -> Tensor {
        mapped(.scalar(.minimum, s, scalarFirst: false)).recorded("minimum", [self]) { g in
            [try g * self.detach().lessEqual(s)]
        }
    }
}
