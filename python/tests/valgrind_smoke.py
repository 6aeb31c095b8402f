"""The Python binding's paths through libqkv, for scripts/valgrind-quick.sh
(not a pytest module): a session from a path and from bytes, named runs,
an error, I/O binding, and several threads on one session.

usage: valgrind_smoke.py TESTDATA   (tests' build/testdata)
"""
import os
import sys
import threading

import numpy as np

import qkv


def main():
    model = os.path.join(sys.argv[1], "exec", "mlp.onnx")
    sess = qkv.InferenceSession(model)
    x = np.linspace(-1, 1, 5 * 8, dtype=np.float32).reshape(5, 8)
    (y,) = sess.run(None, {"x": x})
    with open(model, "rb") as f:
        again = qkv.InferenceSession(f.read())
    (y2,) = again.run(["y"], {"x": x})
    assert np.array_equal(y, y2)
    try:
        sess.run(None, {"x": np.ones((2, 3), np.float32)})
        raise AssertionError("a wrong shape ran")
    except qkv.QkvError:
        pass
    binding = sess.io_binding()
    out = np.empty_like(y)
    binding.bind_cpu_input("x", x)
    binding.bind_cpu_output("y", out)
    sess.run_with_iobinding(binding)
    assert np.array_equal(out, y)
    results = []
    threads = [threading.Thread(target=lambda: results.append(sess.run(None, {"x": x})[0]))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(np.array_equal(r, y) for r in results)
    print("valgrind_smoke: ok")


if __name__ == "__main__":
    main()
