import Foundation

/// SVG line charts of a training history: loss per epoch (training and validation) in one panel and, when the
/// history has an accuracy, accuracy in a second panel beside it. Axes, ticks, a legend and a title included.
///
/// ```swift
/// try LossPlot.write(history, title: "Fashion-MNIST MLP", to: URL(fileURLWithPath: "loss.svg"))
/// ```
public enum LossPlot {
    /// The SVG text of the chart.
    public static func svg(_ history: History, title: String = "Training") -> String {
        let accuracyKeys = history.keys.filter { $0 == "accuracy" || $0 == "val_accuracy" }
        let lossKeys = history.keys.filter { $0 == "loss" || $0 == "val_loss" }
        var panels: [(String, [String])] = [("Loss", lossKeys.isEmpty ? Array(history.keys.prefix(2)) : lossKeys)]
        if !accuracyKeys.isEmpty { panels.append(("Accuracy", accuracyKeys)) }
        let panelWidth = 460.0, panelHeight = 340.0
        let width = panelWidth * Double(panels.count) + 40, height = panelHeight + 70
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(width / 2))" y="28" font-size="18" text-anchor="middle" font-weight="bold">\(escape(title))</text>

        """
        for (i, panel) in panels.enumerated() {
            s += self.panel(history, name: panel.0, keys: panel.1,
                            x: 20 + Double(i) * panelWidth, y: 45, width: panelWidth, height: panelHeight)
        }
        return s + "</svg>\n"
    }

    /// Writes the SVG atomically.
    public static func write(_ history: History, title: String = "Training", to url: URL) throws {
        try AtomicFile.write(Data(svg(history, title: title).utf8), to: url)
    }

    private static func panel(_ history: History, name: String, keys: [String],
                              x: Double, y: Double, width: Double, height: Double) -> String {
        let left = x + 62, right = x + width - 20, top = y + 24, bottom = y + height - 46
        let epochs = history.epochs.map(Double.init)
        // Values from a checkpoint's history are untrusted: beyond ±1e300 the axis range would overflow.
        let finite = keys.flatMap { history[$0] ?? [] }.filter { $0.isFinite && Swift.abs($0) < 1e300 }
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if name == "Accuracy" { lo = Swift.min(lo, hi - 0.05); hi = Swift.min(1, hi + 0.01) }
        if hi - lo < 1e-12 { lo -= 0.5; hi += 0.5 }
        let yTicks = ticks(lo, hi, count: 6)
        lo = Swift.min(lo, yTicks.first!); hi = Swift.max(hi, yTicks.last!)
        let e0 = epochs.first ?? 1, e1 = Swift.max(epochs.last ?? 1, e0 + 1)
        let xTicks = ticks(e0, e1, count: 8).filter { $0 >= e0 - 1e-9 && $0 <= e1 + 1e-9 && $0.rounded() == $0 }
        func px(_ e: Double) -> Double { left + (e - e0) / (e1 - e0) * (right - left) }
        func py(_ v: Double) -> Double { bottom - (v - lo) / (hi - lo) * (bottom - top) }

        var s = "<g>\n"
        s += "<text x=\(q((left + right) / 2)) y=\(q(y + 12)) font-size=\"14\" text-anchor=\"middle\">\(name)</text>\n"
        // Grid and ticks.
        for t in yTicks {
            s += "<line x1=\(q(left)) y1=\(q(py(t))) x2=\(q(right)) y2=\(q(py(t))) stroke=\"#e4e4e4\"/>\n"
            s += "<text x=\(q(left - 6)) y=\(q(py(t) + 4)) font-size=\"11\" text-anchor=\"end\">\(label(t, step: yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1))</text>\n"
        }
        for t in xTicks {
            s += "<line x1=\(q(px(t))) y1=\(q(bottom)) x2=\(q(px(t))) y2=\(q(bottom + 5)) stroke=\"black\"/>\n"
            s += "<text x=\(q(px(t))) y=\(q(bottom + 18)) font-size=\"11\" text-anchor=\"middle\">\(String(format: "%.0f", t))</text>\n"
        }
        s += "<line x1=\(q(left)) y1=\(q(bottom)) x2=\(q(right)) y2=\(q(bottom)) stroke=\"black\"/>\n"
        s += "<line x1=\(q(left)) y1=\(q(top)) x2=\(q(left)) y2=\(q(bottom)) stroke=\"black\"/>\n"
        s += "<text x=\(q((left + right) / 2)) y=\(q(bottom + 36)) font-size=\"12\" text-anchor=\"middle\">epoch</text>\n"
        s += "<text x=\(q(x + 14)) y=\(q((top + bottom) / 2)) font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 \(f(x + 14)) \(f((top + bottom) / 2)))\">\(name.lowercased())</text>\n"
        // Lines, with a dot per epoch.
        for (i, key) in keys.enumerated() {
            let color = key.hasPrefix("val_") ? "#d62728" : "#1f77b4"
            let dash = key.hasPrefix("val_") ? " stroke-dasharray=\"6 3\"" : ""
            let points = zip(epochs, history[key] ?? []).filter { $0.1.isFinite && Swift.abs($0.1) < 1e300 }
            if points.count > 1 {
                let path = points.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
                s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\"\(path)\"/>\n"
            }
            if points.count <= 60 {
                for p in points { s += "<circle cx=\(q(px(p.0))) cy=\(q(py(p.1))) r=\"2.5\" fill=\"\(color)\"/>\n" }
            }
            // Legend where the curves usually are not: top right for a loss, bottom right for an accuracy.
            let ly = name == "Accuracy" ? bottom - 14 - Double(keys.count - 1 - i) * 18 : top + 8 + Double(i) * 18
            let lx = right - 150
            s += "<line x1=\(q(lx)) y1=\(q(ly)) x2=\(q(lx + 24)) y2=\(q(ly)) stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            s += "<text x=\(q(lx + 30)) y=\(q(ly + 4)) font-size=\"12\">\(key.hasPrefix("val_") ? "validation" : "training")</text>\n"
        }
        return s + "</g>\n"
    }

    /// About `count` round tick values covering [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double, count: Int) -> [Double] {
        let raw = (hi - lo) / Double(Swift.max(count - 1, 1))
        let magnitude = Foundation.pow(10, Foundation.floor(Foundation.log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let start = Foundation.floor(lo / step) * step
        var out: [Double] = []
        var t = start
        while t <= hi + step * 0.5 && out.count < 50 {
            out.append(Swift.abs(t) < step * 1e-9 ? 0 : t)
            if t >= hi - step * 1e-9 { break }
            t += step
        }
        return out
    }

    private static func label(_ v: Double, step: Double) -> String {
        let exact = -Foundation.floor(Foundation.log10(step)) + (step / Foundation.pow(10, Foundation.floor(Foundation.log10(step))) == 2.5 ? 1 : 0)
        let decimals = exact.isFinite ? Int(Swift.min(Swift.max(exact, 0), 6)) : 0
        return String(format: "%.\(decimals)f", v)
    }

    private static func f(_ v: Double) -> String { String(format: "%.1f", v) }
    private static func q(_ v: Double) -> String { "\"\(f(v))\"" }
    private static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
