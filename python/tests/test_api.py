"""The ONNX Runtime-shaped API of the qkv package against numpy references."""
import logging
import os
import re

import numpy as np
import pytest

import qkv
from conftest import BUILD

# float32 MatMul/Softmax against numpy's float64: a few ulps of a 16-term sum
RTOL, ATOL = 1e-5, 1e-6


def test_version_is_the_librarys():
    assert re.fullmatch(r"\d+\.\d+\.\d+", qkv.__version__)
    assert qkv.get_version_string() == qkv.__version__
    assert tuple(int(p) for p in qkv.__version__.split(".")) == qkv.version_info
    assert qkv.plugin_abi_version[0] >= 1
    assert qkv.get_device() == "CPU"


def test_available_providers_end_with_cpu():
    providers = qkv.get_available_providers()
    assert providers[-1] == "CPUExecutionProvider"
    assert len(set(providers)) == len(providers)


def test_inputs_and_outputs_describe_the_model(models):
    s = qkv.InferenceSession(models["mlp"].path)
    (x,) = s.get_inputs()
    assert (x.name, x.type, x.shape) == ("x", "tensor(float)", ["batch", 8])
    assert [(o.name, o.shape) for o in s.get_outputs()] == [("y", ["batch", 4]),
                                                            ("logits", ["batch", 4])]
    u = qkv.InferenceSession(models["unknown_dims"])
    assert u.get_inputs()[0].shape == [None, 3]
    assert u.get_outputs()[0].shape is None  # rank unknown


def test_model_metadata(models):
    meta = qkv.InferenceSession(models["mlp"].path).get_modelmeta()
    assert meta.producer_name == "qkv-python-tests"
    assert meta.graph_name == "mlp"
    assert meta.description == "a test MLP"
    assert meta.custom_metadata_map == {"author": "qkv"}


@pytest.mark.parametrize("batch", [1, 5, 64])
def test_run_matches_numpy(models, batch):
    m = models["mlp"]
    s = qkv.InferenceSession(m.path)
    x = np.random.default_rng(batch).standard_normal((batch, 8)).astype(np.float32)
    y, logits = s.run(None, {"x": x})
    assert y.dtype == np.float32 and y.shape == (batch, 4)
    np.testing.assert_allclose(y, m.reference(x), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(logits, m.logits(x), rtol=1e-4, atol=1e-5)
    (only,) = s.run(["logits"], {"x": x})
    assert np.array_equal(only, logits)


def test_session_from_bytes(models):
    m = models["mlp"]
    x = np.ones((2, 8), np.float32)
    a = qkv.InferenceSession(m.bytes).run(["y"], {"x": x})[0]
    b = qkv.InferenceSession(m.path).run(["y"], {"x": x})[0]
    assert np.array_equal(a, b)


def test_outputs_are_the_callers_after_the_next_run(models):
    s = qkv.InferenceSession(models["mlp"].path)
    x1 = np.zeros((3, 8), np.float32)
    y1 = s.run(["logits"], {"x": x1})[0]
    keep = y1.copy()
    s.run(["logits"], {"x": np.ones((3, 8), np.float32)})
    assert np.array_equal(y1, keep)


def test_inputs_zero_copy_when_contiguous_and_typed_else_converted(models):
    m = models["mlp"]
    s = qkv.InferenceSession(m.path)
    x = np.random.default_rng(0).standard_normal((6, 16)).astype(np.float32)
    ok = np.ascontiguousarray(x[:, :8])
    assert s._input_array("x", ok) is ok  # handed to qkv as it is
    strided = x[:, ::2]
    assert not strided.flags.c_contiguous
    converted = s._input_array("x", strided)
    assert converted is not strided and converted.flags.c_contiguous
    y_strided = s.run(["y"], {"x": strided})[0]
    np.testing.assert_allclose(y_strided, m.reference(strided), rtol=RTOL, atol=ATOL)
    y64 = s.run(["y"], {"x": strided.astype(np.float64)})[0]
    assert np.array_equal(y64, y_strided)
    ylist = s.run(["y"], {"x": strided.tolist()})[0]
    assert np.array_equal(ylist, y_strided)


def test_session_options(models):
    m = models["mlp"]
    x = np.random.default_rng(1).standard_normal((9, 8)).astype(np.float32)
    want = m.reference(x)
    for level in qkv.GraphOptimizationLevel:
        so = qkv.SessionOptions()
        so.intra_op_num_threads = 2
        so.graph_optimization_level = level
        so.enable_fusion = level != qkv.GraphOptimizationLevel.ORT_ENABLE_BASIC
        y = qkv.InferenceSession(m.path, so).run(["y"], {"x": x})[0]
        np.testing.assert_allclose(y, want, rtol=RTOL, atol=ATOL)
    so = qkv.SessionOptions()
    so.no_default_plugins = True
    s = qkv.InferenceSession(m.path, so)
    assert s.get_providers() == ["CPUExecutionProvider"]
    assert s.get_session_options() is so


def test_providers_map_to_backends(models):
    m = models["mlp"]
    s = qkv.InferenceSession(m.path, providers=["CPUExecutionProvider"])
    assert s.get_providers() == ["CPUExecutionProvider"]
    s = qkv.InferenceSession(m.path, providers=[("CPUExecutionProvider", {})])
    assert s.get_providers() == ["CPUExecutionProvider"]
    with pytest.warns(RuntimeWarning, match="CUDAExecutionProvider is not available"):
        s = qkv.InferenceSession(m.path, providers=["CUDAExecutionProvider",
                                                    "CPUExecutionProvider"])
    assert s.get_providers() == ["CPUExecutionProvider"]
    for p in qkv.get_available_providers():
        s = qkv.InferenceSession(m.path, providers=[p])
        assert s.get_providers()[0] == p
        x = np.ones((2, 8), np.float32)
        np.testing.assert_allclose(s.run(["y"], {"x": x})[0], m.reference(x), rtol=1e-4,
                                   atol=1e-5)


def test_io_binding_writes_into_caller_arrays(models):
    m = models["mlp"]
    s = qkv.InferenceSession(m.path)
    x = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    y = np.full((4, 4), np.nan, np.float32)
    b = s.io_binding()
    b.bind_cpu_input("x", x)
    b.bind_cpu_output("y", y)
    b.bind_output("logits")  # qkv allocates this one
    s.run_with_iobinding(b)
    out_y, out_logits = b.get_outputs()
    assert out_y is y  # written in place
    np.testing.assert_allclose(y, m.reference(x), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(out_logits, m.logits(x), rtol=1e-4, atol=1e-5)
    copies = b.copy_outputs_to_cpu()
    assert copies[0] is not y and np.array_equal(copies[0], y)
    # ORT's raw-pointer form
    y2 = np.zeros((4, 4), np.float32)
    b.clear_binding_outputs()
    b.bind_output("y", "cpu", 0, np.float32, y2.shape, y2.ctypes.data)
    s.run_with_iobinding(b)
    assert np.array_equal(y2, y)


def test_kv_cache_extended_in_place(models):
    """One numpy cache per K and V: each decode step binds past as its first t
    rows and present as its first t + 1, so qkv writes only the new row."""
    s = qkv.InferenceSession(models["kv"])
    steps, d = 5, 8
    cache_k = np.zeros((1, steps, d), np.float32)
    cache_v = np.zeros((1, steps, d), np.float32)
    ref_k = np.zeros((1, 0, d), np.float32)
    ref_v = np.zeros((1, 0, d), np.float32)
    rng = np.random.default_rng(9)
    b = s.io_binding()
    for t in range(steps):
        x = rng.standard_normal((1, 1, d)).astype(np.float32)
        y = np.empty((1, 1, d), np.float32)
        b.bind_cpu_input("x", x)
        b.bind_cpu_input("past_k", cache_k[:, :t])
        b.bind_cpu_input("past_v", cache_v[:, :t])
        b.bind_cpu_output("y", y)
        b.bind_cpu_output("present_k", cache_k[:, :t + 1])
        b.bind_cpu_output("present_v", cache_v[:, :t + 1])
        s.run_with_iobinding(b)
        ry, ref_k, ref_v = s.run(None, {"x": x, "past_k": ref_k, "past_v": ref_v})
        assert np.array_equal(y, ry)
        assert np.array_equal(cache_k[:, :t + 1], ref_k)
        assert np.array_equal(cache_v[:, :t + 1], ref_v)


def test_log_messages_go_to_the_python_logger(models, caplog):
    plugin = os.path.join(BUILD, "tests", "fixture_plugins", "fx_log.so")
    assert os.path.exists(plugin), f"{plugin}: build the test fixtures (ctest) first"
    so = qkv.SessionOptions()
    so.register_custom_ops_library(plugin)
    so.no_default_plugins = True
    so.log_severity_level = 1  # info
    with caplog.at_level(logging.DEBUG, logger="qkv"):
        s = qkv.InferenceSession(models["log_echo"], so)
        s.run(None, {"x": np.ones(3, np.float32)})
    got = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "qkv"]
    assert got == [("INFO", "fx_log: init echo"), ("WARNING", "fx_log: compute")]
