import Foundation

// An ONNX graph as `Layer.exportONNX` builds it, and its encoding as an ONNX `ModelProto` with `ProtobufWriter`.
// Field numbers are those of onnx.proto (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto), named in the
// comments by message.

/// An attribute of an ONNX node (AttributeProto): an int, a float, or a list of ints.
enum ONNXAttribute {
    case int(Int)
    case float(Float)
    case ints([Int])
}

/// One ONNX node (NodeProto): an operator applied to named values, giving named values.
struct ONNXNode {
    let op: String
    let inputs: [String]
    let outputs: [String]
    let name: String
    let attributes: [(String, ONNXAttribute)]
}

/// A constant of the graph (TensorProto in `GraphProto.initializer`): float32 values or int64 values.
struct ONNXInitializer {
    enum Values {
        case float([Float])
        case int64([Int64])
    }
    let name: String
    let dims: [Int]
    let values: Values
}

/// An ONNX graph under construction: its nodes in order (each node's inputs come before it), its initializers,
/// and fresh value names.
struct ONNXGraph {
    /// The opset of the default domain the graph uses (ONNX 1.12's, which ONNX Runtime 1.12 and later run).
    static let opset = 17
    /// The IR version that goes with opset 17 (IR_VERSION_2021_7_30).
    static let irVersion = 8
    /// The name of the graph's dynamic first dimension.
    static let batchDimension = "batch"

    private(set) var nodes: [ONNXNode] = []
    private(set) var initializers: [ONNXInitializer] = []
    private var usedNames: Set<String> = []
    private var counter = 0

    /// A value name not used yet, from `hint` ("relu" -> "relu_3").
    mutating func fresh(_ hint: String) -> String {
        counter += 1
        let name = "\(hint)_\(counter)"
        usedNames.insert(name)
        return name
    }

    /// Adds a node of `op` on `inputs` with one fresh output named after `hint`; returns the output's name.
    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], hint: String? = nil,
                       _ attributes: [(String, ONNXAttribute)] = []) -> String {
        let out = fresh(hint ?? op.lowercased())
        nodes.append(ONNXNode(op: op, inputs: inputs, outputs: [out], name: "\(op)_\(nodes.count)", attributes: attributes))
        return out
    }

    /// Adds a float32 initializer under `name` (made unique if taken); returns the name used.
    mutating func constant(_ name: String, _ values: [Float], dims: [Int]) -> String {
        let unique = usedNames.contains(name) ? fresh(name) : name
        usedNames.insert(unique)
        initializers.append(ONNXInitializer(name: unique, dims: dims, values: .float(values)))
        return unique
    }

    /// Adds an int64 initializer (a shape for `Reshape`); returns its name.
    mutating func int64Constant(_ hint: String, _ values: [Int64]) -> String {
        let name = fresh(hint)
        initializers.append(ONNXInitializer(name: name, dims: [values.count], values: .int64(values)))
        return name
    }

    /// A float32 scalar (dims []) such as the 0.5 of GELU.
    mutating func scalar(_ hint: String, _ value: Float) -> String {
        let name = fresh(hint)
        initializers.append(ONNXInitializer(name: name, dims: [], values: .float([value])))
        return name
    }

    /// The whole model (ModelProto) with `input` [batch] + `inputShape` and `output` [batch] + `outputShape`
    /// (float32, the batch dimension named `batchDimension`).
    func modelBytes(input: String, inputShape: [Int], output: String, outputShape: [Int], graphName: String) -> [UInt8] {
        var model = ProtobufWriter()
        model.int(1, Int64(Self.irVersion))                          // ModelProto.ir_version
        model.string(2, "Myelin")                                    // producer_name
        model.string(3, "1")                                         // producer_version
        model.message(7) { graph in                                  // graph
            for n in nodes { graph.message(1) { Self.encode(n, &$0) } }          // GraphProto.node
            graph.string(2, graphName)                                           // GraphProto.name
            for t in initializers { graph.message(5) { Self.encode(t, &$0) } }   // GraphProto.initializer
            graph.message(11) { Self.valueInfo(input, inputShape, &$0) }         // GraphProto.input
            graph.message(12) { Self.valueInfo(output, outputShape, &$0) }       // GraphProto.output
        }
        model.message(8) { opset in                                  // opset_import (OperatorSetIdProto)
            opset.string(1, "")                                      // domain: the default one
            opset.int(2, Int64(Self.opset))                          // version
        }
        return model.bytes
    }

    private static func encode(_ n: ONNXNode, _ w: inout ProtobufWriter) {
        for i in n.inputs { w.string(1, i) }                          // NodeProto.input
        for o in n.outputs { w.string(2, o) }                         // output
        w.string(3, n.name)                                           // name
        w.string(4, n.op)                                             // op_type
        for (name, value) in n.attributes {
            w.message(5) { a in                                       // attribute (AttributeProto)
                a.string(1, name)                                     // AttributeProto.name
                switch value {
                case .float(let f): a.float(2, f); a.int(20, 1)       // f; type FLOAT
                case .int(let i): a.int(3, Int64(i)); a.int(20, 2)    // i; type INT
                case .ints(let list):                                 // ints (written unpacked, like onnx's
                    for i in list { a.int(8, Int64(i)) }              // Python writer); type INTS
                    a.int(20, 7)
                }
            }
        }
    }

    private static func encode(_ t: ONNXInitializer, _ w: inout ProtobufWriter) {
        w.packedInts(1, t.dims.map(Int64.init))                      // TensorProto.dims
        switch t.values {
        case .float(let v):
            w.int(2, 1)                                               // data_type FLOAT
            w.packedFloats(4, v)                                      // float_data
        case .int64(let v):
            w.int(2, 7)                                               // data_type INT64
            w.packedInts(7, v)                                        // int64_data
        }
        w.string(8, t.name)                                           // name
    }

    /// ValueInfoProto of a float32 tensor [batch] + `shape`.
    private static func valueInfo(_ name: String, _ shape: [Int], _ w: inout ProtobufWriter) {
        w.string(1, name)                                             // ValueInfoProto.name
        w.message(2) { type in                                        // type (TypeProto)
            type.message(1) { tensor in                               // tensor_type (TypeProto.Tensor)
                tensor.int(1, 1)                                      // elem_type FLOAT
                tensor.message(2) { s in                              // shape (TensorShapeProto)
                    s.message(1) { $0.string(2, batchDimension) }     // dim: dim_param "batch"
                    for d in shape { s.message(1) { $0.int(1, Int64(d)) } }   // dim: dim_value
                }
            }
        }
    }
}
