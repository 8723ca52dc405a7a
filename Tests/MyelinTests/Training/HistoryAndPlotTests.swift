import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import MyelinCore
@testable import Myelin

/// The training history (keys in order, CSV and JSON) and the loss plot (well-formed SVG with both panels, round
/// ticks).
@Suite struct HistoryAndPlotTests {
    static func sampleHistory(epochs: Int = 12) -> History {
        var h = History()
        for e in 1...epochs {
            let x = Double(e)
            h.append(epoch: e, ["loss": 0.9 * Foundation.exp(-x / 4) + 0.25, "accuracy": 0.92 - 0.2 * Foundation.exp(-x / 3),
                                "val_loss": 0.85 * Foundation.exp(-x / 5) + 0.3 + 0.004 * x, "val_accuracy": 0.9 - 0.2 * Foundation.exp(-x / 3)])
        }
        return h
    }

    @Test func historyKeepsKeysInOrderAndWritesCSVAndJSON() throws {
        var h = History()
        h.append(epoch: 1, ["val_loss": 2, "loss": 1, "accuracy": 0.5])
        h.append(epoch: 2, ["loss": 0.5, "val_loss": 1, "accuracy": 0.75, "val_accuracy": 0.5])
        #expect(h.keys == ["loss", "accuracy", "val_loss", "val_accuracy"])
        #expect(h["loss"] == [1, 0.5])
        #expect(h["val_accuracy"]![0].isNaN && h["val_accuracy"]![1] == 0.5)
        #expect(h.csv() == "epoch,loss,accuracy,val_loss,val_accuracy\n1,1,0.5,2,nan\n2,0.5,0.75,1,0.5\n")
        let json = try JSONSerialization.jsonObject(with: Data(h.json().utf8)) as! [String: Any]
        #expect((json["epoch"] as! [Any]).count == 2)
        #expect((json["val_accuracy"] as! [Any])[0] is NSNull)
        let dir = temporaryFolder()
        try h.write(to: dir.appendingPathComponent("h.json"))
        try h.write(to: dir.appendingPathComponent("h.csv"))
        #expect(try String(contentsOf: dir.appendingPathComponent("h.csv"), encoding: .utf8) == h.csv())
        #expect(try String(contentsOf: dir.appendingPathComponent("h.json"), encoding: .utf8) == h.json())
    }

    @Test func plotIsWellFormedSVGWithBothPanels() throws {
        let svg = LossPlot.svg(Self.sampleHistory(), title: "Fashion-MNIST <MLP>")
        // Parses as XML.
        #expect(XMLParser(data: Data(svg.utf8)).parse(), "the SVG is not well-formed XML")
        #expect(svg.hasPrefix("<svg "))
        #expect(svg.contains("Fashion-MNIST &lt;MLP&gt;"))
        #expect(svg.contains(">Loss<") && svg.contains(">Accuracy<"))
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 4)
        #expect(svg.contains(">validation<") && svg.contains(">training<") && svg.contains(">epoch<"))
        // A loss-only history has one panel; a single epoch and a NaN do not break it.
        var h = History()
        h.append(epoch: 1, ["loss": .nan])
        let one = LossPlot.svg(h)
        #expect(XMLParser(data: Data(one.utf8)).parse())
        #expect(!one.contains(">Accuracy<") && !one.contains("nan"))
        if let dir = ProcessInfo.processInfo.environment["MYELIN_PLOT_DIR"] {
            try LossPlot.write(Self.sampleHistory(), title: "Sample history", to: URL(fileURLWithPath: dir).appendingPathComponent("sample.svg"))
        }
    }

    @Test func ticksAreRound() {
        #expect(LossPlot.ticks(0, 1, count: 6) == [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1])
        #expect(LossPlot.ticks(1, 10, count: 8).first == 0 && LossPlot.ticks(1, 10, count: 8).last == 10)
    }
}
