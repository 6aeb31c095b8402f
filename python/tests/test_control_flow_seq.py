"""Sequences and optionals that leave If and Loop bodies come back to Python
as lists and None, like any other sequence or optional output (models from
the C tests' generator, tests/data/make_control_flow_seq_models.py)."""
import os
import sys

import numpy as np
import pytest

import qkv

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "data"))
import make_control_flow_seq_models as gen  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = tmp_path_factory.mktemp("cfseq")
    sys.argv = ["make_control_flow_seq_models.py", str(out)]
    gen.main()
    return os.path.join(str(out), "control_flow_seq")


def test_loop_takes_and_gives_lists(models):
    s = qkv.InferenceSession(os.path.join(models, "loop_acc.onnx"))
    p = [gen.W32[0], gen.W32[2]]
    acc, p_out, lens = s.run(None, {"m": np.array(4, np.int64), "x": gen.X2, "p": p})
    assert isinstance(acc, list) and len(acc) == 4
    for i, a in enumerate(acc):
        np.testing.assert_array_equal(a, gen.X2 * i)
    assert isinstance(p_out, list) and len(p_out) == 2
    np.testing.assert_array_equal(p_out[1], p[1])
    np.testing.assert_array_equal(lens, np.arange(1, 5))
    acc, _, _ = s.run(None, {"m": np.array(0, np.int64), "x": gen.X2, "p": p})
    assert acc == []


def test_if_gives_an_array_or_none(models):
    s = qkv.InferenceSession(os.path.join(models, "if_opt.onnx"))
    (got,) = s.run(None, {"c": np.array(True), "x": gen.X2})
    np.testing.assert_array_equal(got, gen.X2)
    (got,) = s.run(None, {"c": np.array(False), "x": gen.X2})
    assert got is None


def test_loop_carries_none_into_a_sequence(models):
    s = qkv.InferenceSession(os.path.join(models, "loop_opt_none.onnx"))
    (seq,) = s.run(None, {"m": np.array(3, np.int64), "x": gen.X2, "o": None})
    assert [list(a) for a in seq] == [list(gen.X2 + i) for i in range(3)]
    with pytest.raises(Exception, match="empty optional"):
        s.run(None, {"m": np.array(0, np.int64), "x": gen.X2, "o": None})
