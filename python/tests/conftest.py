"""Fixtures of the qkv Python tests: small models written with onnx.helper,
with numpy references. Run with Debian's /usr/bin/python3 -m pytest python/tests
(scripts/test.sh does, with QKV_LIBRARY pointing at the build's libqkv.so)."""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # python/: the qkv package of this checkout
SOURCE = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("QKV_BUILD_DIR", os.path.join(SOURCE, "build"))

import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE, "tests", "data"))
import make_io_models  # noqa: E402  the C tests' KV-cache decoder


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class Mlp:
    """x [batch, 8] float -> Softmax(Relu(x @ w1 + b1) @ w2 + b2) -> y [batch, 4]."""

    def __init__(self, directory):
        rng = np.random.default_rng(3)
        self.w1 = rng.standard_normal((8, 16)).astype(np.float32)
        self.b1 = rng.standard_normal(16).astype(np.float32)
        self.w2 = rng.standard_normal((16, 4)).astype(np.float32)
        self.b2 = rng.standard_normal(4).astype(np.float32)
        nodes = [
            helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1/MatMul"),
            helper.make_node("Add", ["h0", "b1"], ["h1"], name="fc1/Add"),
            helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
            helper.make_node("MatMul", ["h2", "w2"], ["h3"], name="fc2/MatMul"),
            helper.make_node("Add", ["h3", "b2"], ["logits"], name="fc2/Add"),
            helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=-1),
        ]
        graph = helper.make_graph(
            nodes, "mlp",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
             helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
            [numpy_helper.from_array(self.w1, "w1"), numpy_helper.from_array(self.b1, "b1"),
             numpy_helper.from_array(self.w2, "w2"), numpy_helper.from_array(self.b2, "b2")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  producer_name="qkv-python-tests")
        model.doc_string = "a test MLP"
        helper.set_model_props(model, {"author": "qkv"})
        self.path = os.path.join(directory, "mlp.onnx")
        onnx.save(model, self.path)
        with open(self.path, "rb") as f:
            self.bytes = f.read()

    def logits(self, x):
        x = x.astype(np.float64)
        return np.maximum(x @ self.w1 + self.b1, 0) @ self.w2 + self.b2

    def reference(self, x):
        return softmax(self.logits(x))


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("models"))
    mlp = Mlp(d)
    io = os.path.join(d, "io")
    os.makedirs(io)
    make_io_models.kv_decoder(io)
    make_io_models.log_echo(io)
    # an input with a dim of no value and no name (unknown), and an output of
    # unknown rank (a Reshape to a shape given at run time, of unknown length)
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["a", "s"], ["b"])], "unknown_dims",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 3]),
         helper.make_tensor_value_info("s", TensorProto.INT64, ["k"])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
    unknown = os.path.join(d, "unknown_dims.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), unknown)
    # an op qkv has no kernel for
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["a"], ["b"], domain="com.example")], "unsupported",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])])
    unsupported = os.path.join(d, "unsupported.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.example", 1)]),
              unsupported)
    return {"mlp": mlp, "dir": d, "kv": os.path.join(io, "kv_decoder.onnx"),
            "log_echo": os.path.join(io, "log_echo.onnx"), "unknown_dims": unknown,
            "unsupported": unsupported}
