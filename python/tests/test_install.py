"""`cmake --install` puts the package beside the library, and the installed
package finds its own libqkv (no QKV_LIBRARY, no source tree on the path)."""
import glob
import os
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD


def test_installed_package_imports_and_runs(tmp_path, models):
    if not shutil.which("cmake") or not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        pytest.fail(f"needs cmake and a configured build in {BUILD}")
    prefix = tmp_path / "prefix"
    r = subprocess.run(["cmake", "--install", BUILD, "--prefix", str(prefix)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    inits = glob.glob(str(prefix / "lib" / "python3*" / "dist-packages" / "qkv" / "__init__.py"))
    assert len(inits) == 1, inits
    site = os.path.dirname(os.path.dirname(inits[0]))
    env = {k: v for k, v in os.environ.items() if k not in ("QKV_LIBRARY", "PYTHONPATH")}
    env["PYTHONPATH"] = site
    code = ("import qkv, numpy as np; print(qkv.library_path); "
            f"s = qkv.InferenceSession({models['mlp'].path!r}); "
            "print(s.run(['y'], {'x': np.ones((1, 8), np.float32)})[0].shape)")
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lib, shape = r.stdout.split("\n")[:2]
    assert os.path.realpath(lib).startswith(os.path.realpath(prefix)), lib
    assert shape == "(1, 4)"
