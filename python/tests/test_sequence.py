"""Sequence and optional inputs and outputs from Python: a sequence is a list
of arrays, an empty optional is None (models written by the C tests'
generator, tests/data/make_sequence_models.py)."""
import os
import sys

import numpy as np
import pytest

import qkv

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "data"))
import make_sequence_models  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = tmp_path_factory.mktemp("seq")
    sys.argv = ["make_sequence_models.py", str(out)]
    make_sequence_models.main()
    return os.path.join(str(out), "sequence")


def test_types_name_the_kinds(models):
    s = qkv.InferenceSession(os.path.join(models, "seq_io.onnx"))
    assert [a.type for a in s.get_inputs()] == [
        "seq(tensor(float))", "optional(seq(tensor(float)))", "tensor(int64)", "tensor(float)"]


def test_sequences_in_and_out_as_lists(models):
    s = qkv.InferenceSession(os.path.join(models, "seq_io.onnx"))
    a = np.array([[1, 2], [3, 4]], np.float32)
    b = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = np.array([[-1], [-2]], np.float32)
    s_copy, os_copy, at, ins, cat = s.run(
        None, {"s": [a, b], "os": None, "p": np.array(1, np.int64), "t": t})
    assert isinstance(s_copy, list) and len(s_copy) == 2
    np.testing.assert_array_equal(s_copy[1], b)
    assert os_copy is None  # an empty optional sequence stays empty
    np.testing.assert_array_equal(at, b)
    assert [x.shape for x in ins] == [(2, 2), (2, 1), (2, 3)]
    np.testing.assert_array_equal(cat, np.concatenate([a, b], axis=1))
    out = s.run(["os_copy"], {"s": [a], "os": [b, b], "p": np.array(0, np.int64), "t": t})
    assert len(out[0]) == 2


def test_empty_optional_is_none_and_its_element_an_error(models):
    s = qkv.InferenceSession(os.path.join(models, "opt_get.onnx"))
    x = np.array([1, 2, 3], np.float32)
    got, has = s.run(None, {"xo": x})
    np.testing.assert_array_equal(got, x)
    assert bool(has)
    with pytest.raises(Exception, match="empty optional"):
        s.run(None, {"xo": None})
