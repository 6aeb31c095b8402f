#!/usr/bin/env python3
"""Exports the example attention models (models/export_examples.py) for the tests.

Usage: make_example_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy, torch)

Writes OUTDIR/examples/<name>/ as ONNX backend test directories (model.onnx,
test_data_set_K/{input,output}_N.pb with PyTorch-eager or numpy references),
read by tests/test_examples.c. Regenerated on every ctest run (a few seconds):
nothing binary is committed.
"""
import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "models"))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    warnings.filterwarnings("ignore")  # the exporter's TracerWarnings are expected
    import export_examples
    out = os.path.join(sys.argv[1], "examples")
    os.makedirs(out, exist_ok=True)
    for name, export in export_examples.EXPORTERS.items():
        export(out)
        print(f"exported {name} to {os.path.join(out, name)}")


if __name__ == "__main__":
    main()
