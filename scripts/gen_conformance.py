#!/usr/bin/python3
"""Generate the ONNX backend *node* conformance suite into OUTDIR/node.

Usage: gen_conformance.py [--force] [--op-type OP] OUTDIR

Uses the test-case generators shipped with Debian's python3-onnx (1.12) --
the same code as `python3 -m onnx.backend.test.cmd_tools generate-data` --
but run in-process, node cases only, with three changes:

* numpy >= 1.24 removed the aliases np.float/np.int/np.bool/np.object (and
  friends) that some generators still use; they are aliased back to the
  builtins before any generator is imported.
* each generator (`export*` static method) runs under its own try/except, so
  one broken generator is reported instead of aborting the whole suite.
* the suite is written to OUTDIR/node.tmp and renamed into place, and a stamp
  file (OUTDIR/node/.stamp.json) records the onnx/numpy versions, a hash of
  this script and the test count.  A later run with a matching stamp and the
  same number of test directories is a no-op (use --force to regenerate).

Layout: OUTDIR/node/<test_name>/model.onnx and
        OUTDIR/node/<test_name>/test_data_set_<i>/{input,output}_<k>.pb

Exit status: 0 on success (even if some generators failed: they are listed),
1 if no test could be generated, 2 on usage errors.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
import warnings

import numpy as np

# ---- numpy compatibility shims (before importing any onnx test module) ----
# Removed in numpy 1.24 (deprecated since 1.20); the generators of onnx 1.12
# still reference them.  Only set what is missing so newer numpys that bring
# them back (or older ones that still have them) are left alone.
_NP_ALIASES = {
    "float": float,
    "int": int,
    "bool": bool,
    "object": object,
    "str": str,
    "long": int,
    "complex": complex,
    "unicode": str,
}
for _name, _value in _NP_ALIASES.items():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            getattr(np, _name)
    except AttributeError:
        setattr(np, _name, _value)

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from onnx.backend.test.case import base as case_base  # noqa: E402

STAMP = ".stamp.json"

# onnx 1.12 has two generators that reuse an earlier test's name (upstream's
# cmd_tools silently overwrote the first).  onnx >= 1.13 renamed the second
# ones to these names; do the same so both tests exist.  Any other duplicate
# gets a "_dup<N>" suffix.
_DUPLICATE_RENAMES = {
    "test_reduce_sum_negative_axes_keepdims_random":
        "test_reduce_sum_empty_axes_input_noop_random",
    "test_resize_tf_crop_and_resize":
        "test_resize_tf_crop_and_resize_extrapolation_value",
}

# Failures of individual generators: (class name, export name, error text).
_FAILURES = []


def _patched_exporter_init(cls, name, bases, dct):
    """Replacement for onnx.backend.test.case.base._Exporter.__init__.

    Same as the original, but an exception in one export() is recorded and the
    remaining exports of the class (and all other classes) still run.
    """
    for k, v in dct.items():
        if not k.startswith("export"):
            continue
        if not isinstance(v, staticmethod):
            raise ValueError("Only staticmethods could be named as export.*")
        export = getattr(cls, k)
        try:
            case_base.Snippets[name].append(
                case_base.process_snippet(name, k, export))
        except Exception:  # snippets are documentation only
            pass
        np.random.seed(seed=0)
        try:
            export()
        except Exception as e:  # noqa: BLE001 - report any generator failure
            _FAILURES.append((name, k, "%s: %s" % (type(e).__name__, e),
                              traceback.format_exc()))
    super(case_base._Exporter, cls).__init__(name, bases, dct)


case_base._Exporter.__init__ = _patched_exporter_init

import onnx.backend.test.case.node as node_test  # noqa: E402


def _script_hash():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def _stamp_content(op_type):
    return {
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "generator": _script_hash(),
        "op_type": op_type,
    }


def _count_tests(node_dir):
    try:
        return sum(1 for e in os.scandir(node_dir)
                   if e.is_dir() and os.path.isfile(os.path.join(e.path, "model.onnx")))
    except FileNotFoundError:
        return 0


def _cached(node_dir, op_type):
    """Return the cached test count if node_dir is up to date, else None."""
    try:
        with open(os.path.join(node_dir, STAMP)) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return None
    want = _stamp_content(op_type)
    if any(stamp.get(k) != v for k, v in want.items()):
        return None
    count = stamp.get("count")
    if not isinstance(count, int) or count <= 0 or _count_tests(node_dir) != count:
        return None
    return count


def _serialize(value, value_info):
    t = value_info.type
    if t.HasField("map_type"):
        return numpy_helper.from_dict(value, value_info.name).SerializeToString()
    if t.HasField("sequence_type"):
        return numpy_helper.from_list(value, value_info.name).SerializeToString()
    if t.HasField("optional_type"):
        return numpy_helper.from_optional(value, value_info.name).SerializeToString()
    assert t.HasField("tensor_type"), value_info.name
    return numpy_helper.from_array(value, value_info.name).SerializeToString()


def _write_case(case, out_dir):
    """What cmd_tools.generate_data does for one non-'real' case."""
    os.makedirs(out_dir)
    with open(os.path.join(out_dir, "model.onnx"), "wb") as f:
        f.write(case.model.SerializeToString())
    graph = case.model.graph
    for i, (inputs, outputs) in enumerate(case.data_sets):
        ds_dir = os.path.join(out_dir, "test_data_set_%d" % i)
        os.makedirs(ds_dir)
        for j, value in enumerate(inputs):
            with open(os.path.join(ds_dir, "input_%d.pb" % j), "wb") as f:
                f.write(_serialize(value, graph.input[j]))
        for j, value in enumerate(outputs):
            with open(os.path.join(ds_dir, "output_%d.pb" % j), "wb") as f:
                f.write(_serialize(value, graph.output[j]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", help="output directory (tests land in OUTDIR/node)")
    ap.add_argument("--force", action="store_true", help="regenerate even if cached")
    ap.add_argument("-t", "--op-type", default=None,
                    help="only generate tests whose node has this op_type")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print tracebacks of failing generators")
    args = ap.parse_args(argv)

    node_dir = os.path.join(args.outdir, "node")
    if not args.force:
        count = _cached(node_dir, args.op_type)
        if count is not None:
            print("gen_conformance: %s is up to date (%d node tests, onnx %s); "
                  "use --force to regenerate" % (node_dir, count, onnx.__version__))
            return 0

    t0 = time.monotonic()
    print("gen_conformance: generating ONNX %s node tests into %s ..."
          % (onnx.__version__, node_dir), flush=True)
    with warnings.catch_warnings():
        # The generators trip many numpy deprecation/overflow warnings; noise.
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            cases = node_test.collect_testcases(args.op_type)
    t_collect = time.monotonic() - t0

    tmp_dir = node_dir + ".tmp"
    if os.path.exists(tmp_dir):
        shutil.rmtree(tmp_dir)
    os.makedirs(tmp_dir)
    written, write_failures, renamed, seen = 0, [], [], set()
    for case in cases:
        if case.kind != "node" or not case.model or not case.data_sets:
            continue
        name = case.name
        if name in seen:
            new = _DUPLICATE_RENAMES.get(name)
            n = 2
            while new is None or new in seen:
                new = "%s_dup%d" % (name, n)
                n += 1
            renamed.append((name, new))
            name = new
            case.model.graph.name = new
        seen.add(name)
        try:
            _write_case(case, os.path.join(tmp_dir, name))
            written += 1
        except Exception as e:  # noqa: BLE001
            shutil.rmtree(os.path.join(tmp_dir, name), ignore_errors=True)
            write_failures.append((name, "%s: %s" % (type(e).__name__, e)))

    if written == 0:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        print("gen_conformance: ERROR: no test generated", file=sys.stderr)
        for cls, export, err, tb in _FAILURES:
            print("  %s.%s: %s" % (cls, export, err), file=sys.stderr)
        return 1

    stamp = _stamp_content(args.op_type)
    stamp["count"] = written
    stamp["failed_generators"] = ["%s.%s: %s" % (c, e, err) for c, e, err, _ in _FAILURES]
    stamp["failed_writes"] = ["%s: %s" % f for f in write_failures]
    stamp["renamed_duplicates"] = ["%s -> %s" % r for r in renamed]
    with open(os.path.join(tmp_dir, STAMP), "w") as f:
        json.dump(stamp, f, indent=1, sort_keys=True)
        f.write("\n")
    if os.path.exists(node_dir):
        shutil.rmtree(node_dir)
    os.makedirs(args.outdir, exist_ok=True)
    os.rename(tmp_dir, node_dir)

    elapsed = time.monotonic() - t0
    for cls, export, err, tb in _FAILURES:
        print("gen_conformance: WARNING: generator %s.%s failed: %s" % (cls, export, err))
        if args.verbose:
            print(tb)
    for old, new in renamed:
        print("gen_conformance: note: duplicate test name %s renamed to %s" % (old, new))
    for name, err in write_failures:
        print("gen_conformance: WARNING: could not write %s: %s" % (name, err))
    print("gen_conformance: %d node tests generated in %.1fs (collect %.1fs, write %.1fs); "
          "%d generator(s) failed, %d case(s) not written"
          % (written, elapsed, t_collect, elapsed - t_collect, len(_FAILURES),
             len(write_failures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
