#!/usr/bin/env python3
"""Writes node tests of the pooling, normalisation and layout ops at the
opsets the ONNX 1.12 suite does not reach (GroupNormalization 18/21,
AveragePool 19 with dilations, LpPool 18, MaxPool 12/22...), with
PyTorch references wherever PyTorch has the same operation, so the ONNX
semantics qkv implements (ceil_mode windows, count_include_pad divisors,
Indices numbering, DepthToSpace CRD, per-group affine of opset 18) are
checked against an independent implementation. One more test is a small
PyTorch block (GroupNorm, padded AvgPool, ceil_mode MaxPool, PixelShuffle,
AdaptiveAvgPool) as torch.onnx.export writes it, at two shapes.

Usage: make_pool_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy, torch)

Layout (the ONNX backend test format, run with `qkv test`):
    OUTDIR/pool_node/test_<name>/model.onnx
    OUTDIR/pool_node/test_<name>/test_data_set_0/{input,output}_<k>.pb
"""
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from onnx.mapping import NP_TYPE_TO_TENSOR_TYPE

RNG = np.random.default_rng(11)


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def write_case(root, name, op, inputs, outputs, opset, **attrs):
    """One single-node test: inputs/outputs are lists of (name, array)."""
    d = os.path.join(root, "test_" + name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    node = helper.make_node(op, [n for n, _ in inputs], [n for n, _ in outputs], **attrs)

    def info(n, a):
        return helper.make_tensor_value_info(n, NP_TYPE_TO_TENSOR_TYPE[a.dtype], a.shape)

    graph = helper.make_graph([node], name, [info(n, a) for n, a in inputs],
                              [info(n, a) for n, a in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, os.path.join(d, "model.onnx"))
    for kind, arrays in (("input", inputs), ("output", outputs)):
        for k, (_, a) in enumerate(arrays):
            path = os.path.join(d, "test_data_set_0", f"{kind}_{k}.pb")
            with open(path, "wb") as f:
                f.write(numpy_helper.from_array(a).SerializeToString())


def t(a):
    return torch.from_numpy(a).double()


def window_sum(x, k, s, pads, d, fn):
    """Sum of fn(x) over each 2-D window (zero padding), with the number of
    input elements in it: torch's unfold, which takes dilations."""
    xt = fn(t(x))
    n, c = x.shape[:2]
    # unfold pads symmetrically: pad explicitly for begin/end pads
    xp = F.pad(xt, (pads[1], pads[3], pads[0], pads[2]))
    ones = F.pad(torch.ones_like(t(x)), (pads[1], pads[3], pads[0], pads[2]))
    cols = F.unfold(xp, k, dilation=d, stride=s)
    cnt = F.unfold(ones, k, dilation=d, stride=s)
    kk = k[0] * k[1]
    oh = (x.shape[2] + pads[0] + pads[2] - (k[0] - 1) * d[0] - 1) // s[0] + 1
    ow = (x.shape[3] + pads[1] + pads[3] - (k[1] - 1) * d[1] - 1) // s[1] + 1
    total = cols.view(n, c, kk, -1).sum(2).view(n, c, oh, ow)
    count = cnt.view(n, c, kk, -1).sum(2).view(n, c, oh, ow)
    return total, count


def maxpool_cases(root):
    x = randn(1, 2, 7, 7)
    y, i = F.max_pool2d(t(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    plane = np.arange(2).reshape(1, 2, 1, 1) * 49
    write_case(root, "maxpool_2d_ceil_pads_indices", "MaxPool", [("x", x)],
               [("y", y.numpy().astype(np.float32)), ("i", i.numpy() + plane)], 12,
               kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    x = randn(1, 2, 6, 6, 6)
    y = F.max_pool3d(t(x), 2, 1, 0, dilation=2)
    write_case(root, "maxpool_3d_dilations", "MaxPool", [("x", x)],
               [("y", y.numpy().astype(np.float32))], 22, kernel_shape=[2, 2, 2],
               dilations=[2, 2, 2])
    x = randn(2, 3, 11)
    y, i = F.max_pool1d(t(x), 3, 2, 1, return_indices=True)
    plane = np.arange(6).reshape(2, 3, 1) * 11
    write_case(root, "maxpool_1d_strides_pads_indices", "MaxPool", [("x", x)],
               [("y", y.numpy().astype(np.float32)), ("i", i.numpy() + plane)], 12,
               kernel_shape=[3], strides=[2], pads=[1, 1])
    for dt in (np.int8, np.uint8):
        info = np.iinfo(dt)
        x = RNG.integers(info.min, info.max + 1, (1, 3, 6, 6)).astype(dt)
        y = F.max_pool2d(t(x), 3, 2, ceil_mode=True)
        write_case(root, f"maxpool_2d_{dt.__name__}_ceil", "MaxPool", [("x", x)],
                   [("y", y.numpy().astype(dt))], 12, kernel_shape=[3, 3], strides=[2, 2],
                   ceil_mode=1)
    x = randn(1, 1, 5, 5).astype(np.float64)
    write_case(root, "maxpool_2d_double_same_upper", "MaxPool", [("x", x)],
               [("y", F.max_pool2d(F.pad(t(x), (0, 1, 0, 1), value=-np.inf), 2, 1).numpy())],
               12, kernel_shape=[2, 2], auto_pad="SAME_UPPER")


def averagepool_cases(root):
    x = randn(1, 2, 7, 8)
    for include in (0, 1):
        y = F.avg_pool2d(t(x), 3, 2, 1, ceil_mode=True, count_include_pad=bool(include))
        write_case(root, f"averagepool_2d_ceil_pads_include_{include}", "AveragePool",
                   [("x", x)], [("y", y.numpy().astype(np.float32))], 19, kernel_shape=[3, 3],
                   strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=include)
    x = randn(2, 2, 5, 6, 7)
    y = F.avg_pool3d(t(x), 3, 2, 1, count_include_pad=False)
    write_case(root, "averagepool_3d_pads", "AveragePool", [("x", x)],
               [("y", y.numpy().astype(np.float32))], 11, kernel_shape=[3, 3, 3],
               strides=[2, 2, 2], pads=[1, 1, 1, 1, 1, 1])
    x = randn(1, 3, 9, 8)
    total, count = window_sum(x, (2, 3), (1, 2), (1, 0, 2, 1), (2, 2), lambda v: v)
    write_case(root, "averagepool_2d_dilations_pads", "AveragePool", [("x", x)],
               [("y", (total / count).numpy().astype(np.float32))], 19, kernel_shape=[2, 3],
               strides=[1, 2], pads=[1, 0, 2, 1], dilations=[2, 2])
    x = randn(2, 4, 10)
    y = F.avg_pool1d(t(x), 4, 3, 2, count_include_pad=True)
    write_case(root, "averagepool_1d_count_include_pad", "AveragePool", [("x", x)],
               [("y", y.numpy().astype(np.float32))], 10, kernel_shape=[4], strides=[3],
               pads=[2, 2], count_include_pad=1)


def lppool_cases(root):
    x = randn(1, 3, 8, 7)
    for p in (1, 2, 3):
        total, _ = window_sum(x, (3, 2), (2, 1), (1, 0, 1, 1), (1, 2), lambda v: v.abs() ** p)
        write_case(root, f"lppool_2d_p{p}_pads_dilations", "LpPool", [("x", x)],
                   [("y", (total ** (1.0 / p)).numpy().astype(np.float32))], 18,
                   kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1], dilations=[1, 2], p=p)
    x = randn(2, 2, 12)
    total, _ = window_sum(x[:, :, None, :], (1, 3), (1, 2), (0, 0, 0, 0), (1, 1),
                          lambda v: v.abs() ** 2)
    write_case(root, "lppool_1d_opset_11", "LpPool", [("x", x)],
               [("y", total.sqrt().numpy()[:, :, 0, :].astype(np.float32))], 11,
               kernel_shape=[3], strides=[2])


def global_pool_cases(root):
    x = randn(2, 3, 4, 5, 6)
    write_case(root, "globalaveragepool_3d", "GlobalAveragePool", [("x", x)],
               [("y", t(x).mean((2, 3, 4), keepdim=True).numpy().astype(np.float32))], 22)
    x = randn(2, 3, 17)
    write_case(root, "globalmaxpool_1d", "GlobalMaxPool", [("x", x)],
               [("y", t(x).amax(2, keepdim=True).numpy().astype(np.float32))], 1)
    x = randn(2, 3, 4, 5)
    y = (t(x).abs() ** 3).sum((2, 3), keepdim=True) ** (1.0 / 3)
    write_case(root, "globallppool_p3", "GlobalLpPool", [("x", x)],
               [("y", y.numpy().astype(np.float32))], 2, p=3)


def norm_cases(root):
    x = randn(2, 6, 4, 3) * 2 + 1
    scale, bias = randn(6), randn(6)
    y = F.group_norm(t(x), 3, t(scale), t(bias), eps=1e-5)
    write_case(root, "group_normalization_opset21", "GroupNormalization",
               [("x", x), ("scale", scale), ("bias", bias)],
               [("y", y.numpy().astype(np.float32))], 21, num_groups=3)
    gscale, gbias = randn(3), randn(3)
    y = F.group_norm(t(x), 3, t(np.repeat(gscale, 2)), t(np.repeat(gbias, 2)), eps=1e-2)
    write_case(root, "group_normalization_opset18_per_group", "GroupNormalization",
               [("x", x), ("scale", gscale), ("bias", gbias)],
               [("y", y.numpy().astype(np.float32))], 18, num_groups=3, epsilon=1e-2)
    x = randn(2, 8, 5, 5)
    y = F.local_response_norm(t(x), 5, alpha=2e-4, beta=0.75, k=2.0)
    write_case(root, "lrn_size_5", "LRN", [("x", x)], [("y", y.numpy().astype(np.float32))],
               13, size=5, alpha=2e-4, beta=0.75, bias=2.0)
    x = randn(3, 5, 7)
    y = F.local_response_norm(t(x), 3)
    write_case(root, "lrn_3d_default", "LRN", [("x", x)], [("y", y.numpy().astype(np.float32))],
               1, size=3)
    x = randn(2, 4, 6) * 3
    scale, bias = randn(4), randn(4)
    y = F.instance_norm(t(x), weight=t(scale), bias=t(bias), eps=1e-5)
    write_case(root, "instancenorm_3d", "InstanceNormalization",
               [("x", x), ("scale", scale), ("bias", bias)],
               [("y", y.numpy().astype(np.float32))], 6)
    x = randn(2, 3, 4, 5) * 2 + 3
    for axes in ([0, 2, 3], [1], [-1, -2]):
        xd = x.astype(np.float64)
        mean = xd.mean(axis=tuple(axes), keepdims=True)
        std = np.sqrt(((xd - mean) ** 2).mean(axis=tuple(axes), keepdims=True))
        name = "mvn_axes_" + "_".join(str(a).replace("-", "m") for a in axes)
        write_case(root, name, "MeanVarianceNormalization", [("x", x)],
                   [("y", ((xd - mean) / (std + 1e-9)).astype(np.float32))], 13, axes=axes)


def layout_cases(root):
    x = randn(2, 18, 3, 4)
    write_case(root, "depthtospace_crd_pixel_shuffle", "DepthToSpace", [("x", x)],
               [("y", F.pixel_shuffle(torch.from_numpy(x), 3).numpy())], 13, blocksize=3,
               mode="CRD")
    b, c, h, w = x.shape
    dcr = x.reshape(b, 3, 3, c // 9, h, w).transpose(0, 3, 4, 1, 5, 2).reshape(b, c // 9, h * 3,
                                                                                w * 3)
    write_case(root, "depthtospace_dcr", "DepthToSpace", [("x", x)], [("y", dcr)], 11,
               blocksize=3)
    x = RNG.integers(0, 1000, (2, 3, 4, 6)).astype(np.int64)
    b, c, h, w = x.shape
    s2d = x.reshape(b, c, h // 2, 2, w // 2, 2).transpose(0, 3, 5, 1, 2, 4).reshape(
        b, c * 4, h // 2, w // 2)
    write_case(root, "spacetodepth_int64", "SpaceToDepth", [("x", x)], [("y", s2d)], 13,
               blocksize=2)


class PoolNormBlock(torch.nn.Module):
    """GroupNorm -> AvgPool (padded, count_include_pad), a ceil_mode MaxPool,
    PixelShuffle and AdaptiveAvgPool(1), as torch.onnx.export writes them
    (InstanceNormalization + Reshape/Mul/Add, Pad + AveragePool, MaxPool,
    DepthToSpace, GlobalAveragePool)."""

    def __init__(self):
        super().__init__()
        self.gn = torch.nn.GroupNorm(4, 8)
        self.avg = torch.nn.AvgPool2d(3, 2, 1)
        self.mx = torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.gap = torch.nn.AdaptiveAvgPool2d(1)
        self.ps = torch.nn.PixelShuffle(2)

    def forward(self, x):
        a = self.avg(self.gn(x))
        b = self.mx(x)
        return a, b, self.gap(a + b), self.ps(x)


def torch_export_case(root):
    """The block exported at opset 17 with dynamic batch and spatial dims,
    checked at two shapes against PyTorch eager (odd spatial dims, where the
    padded AvgPool and the ceil_mode MaxPool give the same output size)."""
    torch.manual_seed(0)
    m = PoolNormBlock().eval()
    with torch.no_grad():
        m.gn.weight.normal_()
        m.gn.bias.normal_()
    d = os.path.join(root, "test_torch_pool_norm_block")
    os.makedirs(d, exist_ok=True)
    names = ["avg", "max", "gap", "shuffle"]
    dyn = {"x": {0: "n", 2: "h", 3: "w"}}
    x = torch.randn(2, 8, 13, 11)
    torch.onnx.export(m, (x,), os.path.join(d, "model.onnx"), opset_version=17,
                      input_names=["x"], output_names=names, dynamic_axes=dyn)
    for k, shape in enumerate([(2, 8, 13, 11), (1, 8, 9, 7)]):
        x = torch.randn(*shape)
        with torch.no_grad():
            outs = m(x)
        ds = os.path.join(d, f"test_data_set_{k}")
        os.makedirs(ds, exist_ok=True)
        for kind, arrays in (("input", [x]), ("output", outs)):
            for i, a in enumerate(arrays):
                with open(os.path.join(ds, f"{kind}_{i}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(a.numpy()).SerializeToString())


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = os.path.join(sys.argv[1], "pool_node")
    os.makedirs(root, exist_ok=True)
    for make in (maxpool_cases, averagepool_cases, lppool_cases, global_pool_cases, norm_cases,
                 layout_cases, torch_export_case):
        make(root)


if __name__ == "__main__":
    main()
