#!/usr/bin/env python3
"""Checks an ONNX file Myelin exported and runs it under ONNX Runtime (used by Tests/MyelinTests/IO/ONNXRuntimeTests.swift).

    onnx_check.py MODEL.onnx INPUT.f32 D1,D2,... OUTPUT.f32

Runs onnx.checker.check_model (full check, with shape inference), checks that the graph's input and output have
the dynamic first dimension "batch", reads the input (raw little-endian float32 of shape D1,D2,...), runs the model
on ONNX Runtime's CPU provider and writes the output as raw little-endian float32. Prints "ok <output shape>".
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model_path, input_path, shape_text, output_path = sys.argv[1:5]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    opset = {o.domain: o.version for o in model.opset_import}
    assert opset.get("", 0) >= 17, f"opset {opset}"
    for value in list(model.graph.input) + list(model.graph.output):
        first = value.type.tensor_type.shape.dim[0]
        assert first.dim_param == "batch", f"{value.name}: first dimension {first}"
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT, value.name
    for tensor in model.graph.initializer:
        assert tensor.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64), tensor.name
    shape = [int(d) for d in shape_text.split(",")]
    x = np.fromfile(input_path, dtype="<f4").reshape(shape)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    np.asarray(y, dtype="<f4").tofile(output_path)
    print("ok", list(y.shape))


if __name__ == "__main__":
    main()
