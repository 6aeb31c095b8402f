"""RunOptions.terminate, as in ONNX Runtime: set from another thread, it
stops a run that would not end by itself (a Loop of 2^63-1 iterations);
while it is set, runs with those options are refused; the session keeps
working for every run afterwards."""
import threading
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import qkv


def loop_model(path):
    """x = 0.5 x + 1, m times (m an input)."""
    f = helper.make_tensor_value_info
    FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
    body = helper.make_graph(
        [helper.make_node("Mul", ["x_in", "half"], ["h"], name="mul"),
         helper.make_node("Add", ["h", "one"], ["x_out"], name="add"),
         helper.make_node("Identity", ["c_in"], ["c_out"], name="keep")],
        "body", [f("i", INT64, []), f("c_in", BOOL, []), f("x_in", FLOAT, [4])],
        [f("c_out", BOOL, []), f("x_out", FLOAT, [4])],
        [numpy_helper.from_array(np.array(0.5, np.float32), "half"),
         numpy_helper.from_array(np.array(1, np.float32), "one")])
    g = helper.make_graph([helper.make_node("Loop", ["m", "", "x0"], ["x"], body=body,
                                            name="loop")],
                          "loop_m", [f("m", INT64, []), f("x0", FLOAT, [4])],
                          [f("x", FLOAT, [4])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 16)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


X0 = np.array([0, 1, 100, -7], np.float32)


def expected(m):
    x = X0.copy()
    for _ in range(m):
        x = x * np.float32(0.5) + np.float32(1)
    return x


@pytest.fixture
def session(tmp_path):
    with qkv.InferenceSession(loop_model(str(tmp_path / "loop_m.onnx"))) as s:
        yield s


def feed(m):
    return {"m": np.array(m, np.int64), "x0": X0}


def test_terminate_from_another_thread_stops_an_endless_run(session):
    opts = qkv.RunOptions()
    timer = threading.Timer(0.05, lambda: setattr(opts, "terminate", True))
    t0 = time.monotonic()
    timer.start()
    with pytest.raises(qkv.Cancelled) as e:
        session.run(None, feed(np.iinfo(np.int64).max), opts)
    timer.join()
    assert time.monotonic() - t0 < 30
    assert e.value.status == 10
    assert "cancelled" in e.value.message
    # still set: refused at once, like ORT
    with pytest.raises(qkv.Cancelled):
        session.run(None, feed(2), opts)
    opts.terminate = False
    np.testing.assert_allclose(session.run(None, feed(10), opts)[0], expected(10), rtol=1e-6)
    # the session's other runs were never affected
    np.testing.assert_allclose(session.run(None, feed(3))[0], expected(3), rtol=1e-6)


def test_terminate_after_a_run_ended_does_not_leak_into_the_next_run(session):
    opts = qkv.RunOptions()
    np.testing.assert_allclose(session.run(None, feed(4), opts)[0], expected(4), rtol=1e-6)
    opts.terminate = True
    opts.terminate = False
    for m in (1, 5, 7):  # pooled contexts: none carries a stale request
        np.testing.assert_allclose(session.run(None, feed(m))[0], expected(m), rtol=1e-6)


def test_iobinding_honours_terminate(session):
    opts = qkv.RunOptions()
    opts.terminate = True
    b = session.io_binding()
    b.bind_cpu_input("m", np.array(3, np.int64))
    b.bind_cpu_input("x0", X0)
    b.bind_output("x")
    with pytest.raises(qkv.Cancelled):
        session.run_with_iobinding(b, opts)
    opts.terminate = False
    session.run_with_iobinding(b, opts)
    np.testing.assert_allclose(b.copy_outputs_to_cpu()[0], expected(3), rtol=1e-6)
