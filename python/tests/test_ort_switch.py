"""A user switching from ONNX Runtime: the same script, with
`import onnxruntime as ort` replaced by `import qkv as ort`."""
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def test_ort_script_runs_with_import_qkv_as_ort(models, tmp_path):
    with open(os.path.join(HERE, "ort_user_script.py")) as f:
        source = f.read()
    assert "import onnxruntime as ort\n" in source
    script = tmp_path / "user_script_qkv.py"
    script.write_text(source.replace("import onnxruntime as ort\n", "import qkv as ort\n"))
    out = tmp_path / "out.npz"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    r = subprocess.run([sys.executable, str(script), models["mlp"].path, str(out)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "input x ['batch', 8] tensor(float)" in r.stdout
    res = np.load(out)
    m = models["mlp"]
    np.testing.assert_allclose(res["y"], m.reference(res["x"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res["logits"], m.logits(res["x"]), rtol=1e-4, atol=1e-5)
    assert np.array_equal(res["probs"], res["y"])
    assert np.array_equal(res["bound"], res["y"])
    assert bool(res["failed"])
