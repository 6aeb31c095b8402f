#!/usr/bin/env python3
"""Exports the small real architectures of models/export_vision.py for the tests.

Usage: make_vision_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy,
torch, torchvision, torchaudio)

Writes OUTDIR/vision/<name>/ (ViT, Swin, MaxViT, wav2vec2, Conformer at small
sizes) as ONNX backend test directories with PyTorch-eager references at two
shapes each, read by tests/test_vision_models.c. Regenerated on every ctest
run: nothing binary is committed.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "models"))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    import export_vision
    export_vision.main([os.path.join(sys.argv[1], "vision")])


if __name__ == "__main__":
    main()
