"""Every failure raises a qkv.QkvError subclass carrying the C message."""
import numpy as np
import pytest

import qkv


def test_missing_file_is_an_io_error(tmp_path):
    path = str(tmp_path / "nope.onnx")
    with pytest.raises(qkv.QkvIOError) as e:
        qkv.InferenceSession(path)
    assert e.value.status == 7
    assert "nope.onnx" in e.value.message
    assert isinstance(e.value, OSError) and isinstance(e.value, qkv.QkvError)


def test_garbage_is_an_invalid_model():
    with pytest.raises(qkv.InvalidModel) as e:
        qkv.InferenceSession(b"\x08\x07 this is not a model")
    assert e.value.status == 2 and e.value.message


def test_an_op_without_kernel_is_unsupported(models):
    with pytest.raises(qkv.Unsupported, match="no kernel for op NoSuchOp"):
        qkv.InferenceSession(models["unsupported"])


def test_unknown_plugin_is_reported(models, tmp_path):
    so = qkv.SessionOptions()
    so.register_custom_ops_library(str(tmp_path / "libmissing.so"))
    with pytest.raises(qkv.QkvError, match="libmissing.so"):
        qkv.InferenceSession(models["mlp"].path, so)


def test_bad_backend_list(models):
    so = qkv.SessionOptions()
    so.backends = "no-such-backend"
    with pytest.raises(qkv.InvalidArgument, match="no-such-backend"):
        qkv.InferenceSession(models["mlp"].path, so)


def test_negative_threads(models):
    so = qkv.SessionOptions()
    so.intra_op_num_threads = -2
    with pytest.raises(qkv.InvalidArgument, match="intra_op_num_threads is -2"):
        qkv.InferenceSession(models["mlp"].path, so)


@pytest.fixture
def mlp(models):
    return qkv.InferenceSession(models["mlp"].path)


def test_input_errors(mlp):
    x = np.ones((2, 8), np.float32)
    with pytest.raises(qkv.InvalidArgument, match="no input named 'z'"):
        mlp.run(None, {"x": x, "z": x})
    with pytest.raises(qkv.InvalidArgument, match="input 0 'x' is not bound"):
        mlp.run(None, {})
    with pytest.raises(qkv.ShapeError, match="dim 1 is 7, the model says 8") as e:
        mlp.run(None, {"x": np.ones((2, 7), np.float32)})
    assert e.value.status == 4 and isinstance(e.value, ValueError)
    with pytest.raises(qkv.ShapeError, match="rank 3, expected 2"):
        mlp.run(None, {"x": np.ones((1, 2, 8), np.float32)})
    with pytest.raises(qkv.DTypeError, match="input 'x' is complex64") as e:
        mlp.run(None, {"x": np.ones((2, 8), np.complex64)})
    assert isinstance(e.value, TypeError)


def test_output_errors(mlp):
    x = np.ones((2, 8), np.float32)
    with pytest.raises(qkv.InvalidArgument, match="no output named 'z'"):
        mlp.run(["z"], {"x": x})
    with pytest.raises(qkv.InvalidArgument, match="output 'y' is requested twice"):
        mlp.run(["y", "y"], {"x": x})


def test_binding_errors(mlp):
    x = np.ones((2, 8), np.float32)
    b = mlp.io_binding()
    b.bind_cpu_input("x", x)
    y = np.full((3, 4), 7, np.float32)
    b.bind_cpu_output("y", y)
    with pytest.raises(qkv.ShapeError, match=r"bound buffer has shape \[3,4\], the run makes "
                                             r"\[2,4\]"):
        mlp.run_with_iobinding(b)
    assert (y == 7).all(), "nothing is written when the check fails"
    b.bind_cpu_output("y", np.zeros((2, 4), np.float64))
    with pytest.raises(qkv.DTypeError, match="bound buffer is float64, the output is float32"):
        mlp.run_with_iobinding(b)
    b.clear_binding_outputs()
    over = np.zeros((2, 8), np.float32)
    b.bind_cpu_input("x", over)
    b.bind_cpu_output("y", over.reshape(-1)[:8].reshape(2, 4))  # y over x's first row
    with pytest.raises(qkv.InvalidArgument, match="overlaps input 0 'x'"):
        mlp.run_with_iobinding(b)
    with pytest.raises(qkv.InvalidArgument, match="no output named 'q'"):
        b.bind_cpu_output("q", np.zeros(1, np.float32))
    with pytest.raises(qkv.InvalidArgument, match="writable C-contiguous"):
        b.bind_cpu_output("y", np.zeros((4, 8), np.float32)[:, ::2])
    with pytest.raises(qkv.InvalidArgument, match="runs on the CPU"):
        b.bind_output("y", "cuda")
    with pytest.raises(qkv.InvalidArgument, match="no run with this binding"):
        mlp.io_binding().get_outputs()


def test_closed_session(models):
    s = qkv.InferenceSession(models["mlp"].path)
    s.close()
    with pytest.raises(qkv.InvalidArgument, match="closed"):
        s.run(None, {"x": np.ones((1, 8), np.float32)})
    s.close()  # twice is fine
