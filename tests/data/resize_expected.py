#!/usr/bin/python3
"""Prints the fixed expected values of tests/test_resize.c, test_gridsample.c
and test_roialign.c (not run by the build; run it by hand to regenerate or
re-check them):

    /usr/bin/python3 tests/data/resize_expected.py [ORT_DIR]

Resize: a numpy port of the ONNX reference (onnx/reference/ops/op_resize.py,
opset 19) with the two changes qkv and ONNX Runtime share: align_corners and
tf_crop_and_resize divide by the integer output length, and
pytorch_half_pixel maps a length-1 output to 0. With ORT_DIR (a directory
holding node_modules/onnxruntime-node, as bench/vs-ort.sh installs) each case
also runs on ONNX Runtime and the largest difference is printed.
GridSample: torch.nn.functional.grid_sample. RoiAlign: torchvision.ops.roi_align.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

def cubic(r, A):
    return np.array([((A*(r+1)-5*A)*(r+1)+8*A)*(r+1)-4*A, ((A+2)*r-(A+3))*r*r+1,
                     ((A+2)*(1-r)-(A+3))*(1-r)*(1-r)+1, ((A*((1-r)+1)-5*A)*((1-r)+1)+8*A)*((1-r)+1)-4*A])

def cubic_aa(r, s, A):
    s = min(s, 1.0)
    def k(x):
        x = abs(x)
        if x <= 1: return (A+2)*x**3-(A+3)*x**2+1
        if x < 2: return A*x**3-5*A*x**2+8*A*x-4*A
        return 0.0
    st = int(np.floor(-2/s)+1)
    c = np.array([k(s*(i-r)) for i in range(st, 2-st)])
    return c/c.sum()

def linear_aa(r, s):
    s = min(s, 1.0)
    st = int(np.floor(-1/s)+1)
    fp = 2-2*st
    c = np.clip(1-np.abs((np.arange(st, st+fp)-r)*s), 0, 1)
    return c/c.sum()

def nearest_c(r, mode):
    if float(r).is_integer(): return np.array([0, 1])
    return {'round_prefer_floor': [r <= .5, r > .5], 'round_prefer_ceil': [r < .5, r >= .5],
            'floor': [1, 0], 'ceil': [0, 1]}[mode] * np.ones(2)

def neighbors(x, n, data):
    pw = int(np.ceil(n/2))
    p = np.pad(data, pw, mode='edge')
    x = x + pw
    idx = sorted(sorted(range(len(p)), key=lambda i: (abs(x-i), i))[:n])
    return np.array(idx)-pw, p[idx]

def interp1(data, s, oint, x, coeffs, roi, ex, coord, excl):
    L = len(data); ow = s*L
    if coord == 'align_corners': xo = 0.0 if oint == 1 else x*(L-1)/(oint-1)
    elif coord == 'asymmetric': xo = x/s
    elif coord == 'tf_crop_and_resize':
        xo = (roi[1]-roi[0])*(L-1)/2 if oint == 1 else x*(roi[1]-roi[0])*(L-1)/(oint-1)
        xo += roi[0]*(L-1)
        if xo < 0 or xo > L-1: return ex
    elif coord == 'pytorch_half_pixel': xo = 0.0 if oint == 1 else (x+.5)/s-.5
    elif coord == 'half_pixel': xo = (x+.5)/s-.5
    elif coord == 'half_pixel_symmetric':
        xo = L/2*(1-oint/ow) + (x+.5)/s-.5
    xo = float(xo)
    xi = int(np.floor(xo))
    r = 1 if xo.is_integer() else xo-xi
    c = np.array(coeffs(r, s), dtype=float)
    idx, pts = neighbors(xo, len(c), np.asarray(data, dtype=float))
    if excl:
        for i, j in enumerate(idx):
            if j < 0 or j >= L: c[i] = 0
        c /= c.sum()
    return float(np.dot(c, pts))

def interpnd(data, scales, osz, x, coeffs, roi, **kw):
    n = data.ndim
    if n == 1: return interp1(data, scales[0], osz[0], x[0], coeffs, roi, **kw)
    sub = None if roi is None else np.concatenate([roi[1:n], roi[n+1:]])
    vals = [interpnd(data[i], scales[1:], osz[1:], x[1:], coeffs, sub, **kw) for i in range(data.shape[0])]
    return interp1(np.array(vals), scales[0], osz[0], x[0], coeffs, None if roi is None else [roi[0], roi[n]], **kw)

def resize(X, mode='nearest', coord='half_pixel', nearest='round_prefer_floor', scales=None, sizes=None,
           axes=None, roi=None, antialias=0, exclude=0, A=-0.75, extrap=0.0, policy='stretch'):
    r = X.ndim
    axes = list(range(r)) if axes is None else [a % r for a in axes]
    sc = [1.0]*r; osz = list(X.shape); rr = None
    if roi is not None:
        rr = [0.0]*r + [1.0]*r
        for i, a in enumerate(axes): rr[a] = roi[i]; rr[r+a] = roi[len(axes)+i]
    if scales is not None:
        for i, a in enumerate(axes):
            sc[a] = float(np.float32(scales[i])); osz[a] = int(np.floor(np.float32(X.shape[a])*np.float32(scales[i])))
    else:
        for i, a in enumerate(axes): sc[a] = sizes[i]/X.shape[a]; osz[a] = int(sizes[i])
        if policy != 'stretch':
            s = (min if policy == 'not_larger' else max)(sc[a] for a in axes)
            for a in axes: sc[a] = s; osz[a] = int(s*X.shape[a]+0.5)
    if mode == 'nearest': co = lambda rt, s: nearest_c(rt, nearest)
    elif mode == 'linear': co = (lambda rt, s: linear_aa(rt, s)) if antialias else (lambda rt, s: [1-rt, rt])
    else: co = (lambda rt, s: cubic_aa(rt, s, A)) if antialias else (lambda rt, s: cubic(rt, A))
    out = np.zeros(osz)
    for x in np.ndindex(*osz):
        out[x] = interpnd(X.astype(float), sc, osz, x, co, rr, ex=extrap, coord=coord, excl=exclude)
    return out


def fmt(a):
    def one(v):
        s = '%.8g' % v
        return (s if ('.' in s or 'e' in s or 'n' in s) else s + '.0') + 'f'
    return '{' + ', '.join(one(v) for v in np.asarray(a).ravel()) + '}'


ORT_JS = r"""
const ort = require(process.argv[2] + '/node_modules/onnxruntime-node');
const fs = require('fs');
(async () => {
  const s = await ort.InferenceSession.create(process.argv[3]);
  const v = JSON.parse(fs.readFileSync(process.argv[4]));
  const r = await s.run({X: new ort.Tensor('float32', Float32Array.from(v.data), v.dims)});
  const o = r[s.outputNames[0]];
  console.log(JSON.stringify({dims: o.dims, data: Array.from(o.data, Number)}));
})().catch(e => console.log(JSON.stringify({error: String(e)})));
"""


def run_ort(ort_dir, X, kw):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    names = {'mode': 'mode', 'coord': 'coordinate_transformation_mode', 'nearest': 'nearest_mode',
             'antialias': 'antialias', 'exclude': 'exclude_outside', 'A': 'cubic_coeff_a',
             'extrap': 'extrapolation_value', 'policy': 'keep_aspect_ratio_policy', 'axes': 'axes'}
    attrs = {names[k]: v for k, v in kw.items() if k in names}
    inits, inputs = [], ['X', '', '', '']
    for slot, key, dtype in ((1, 'roi', np.float32), (2, 'scales', np.float32), (3, 'sizes', np.int64)):
        if kw.get(key) is not None:
            inits.append(numpy_helper.from_array(np.array(kw[key], dtype), key))
            inputs[slot] = key
    while inputs[-1] == '':
        inputs.pop()
    graph = helper.make_graph([helper.make_node('Resize', inputs, ['Y'], **attrs)], 'g',
                              [helper.make_tensor_value_info('X', TensorProto.FLOAT, X.shape)],
                              [helper.make_tensor_value_info('Y', TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 19)])
    model.ir_version = 8
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(model, os.path.join(tmp, 'm.onnx'))
        with open(os.path.join(tmp, 'x.json'), 'w') as f:
            json.dump({'dims': list(X.shape), 'data': X.ravel().tolist()}, f)
        with open(os.path.join(tmp, 'run.js'), 'w') as f:
            f.write(ORT_JS)
        out = json.loads(subprocess.run(['node', os.path.join(tmp, 'run.js'), ort_dir,
                                         os.path.join(tmp, 'm.onnx'), os.path.join(tmp, 'x.json')],
                                        capture_output=True, text=True).stdout)
    return out.get('error') or np.array(out['data']).reshape(out['dims'])


def resize_pins(ort_dir):
    d4 = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
    e = ((np.arange(35) * 7) % 11 + np.arange(35) * 0.125).astype(np.float32).reshape(1, 1, 5, 7)
    pins = [
        ('antialias linear, scales 0.6', d4, dict(mode='linear', scales=[1, 1, .6, .6], antialias=1)),
        ('antialias cubic, sizes', d4, dict(mode='cubic', sizes=[1, 1, 3, 2], antialias=1)),
        ('antialias cubic A -0.5 exclude_outside', e,
         dict(mode='cubic', scales=[1, 1, .5, .4], antialias=1, exclude=1, A=-0.5)),
        ('not_larger, axes', d4, dict(mode='nearest', sizes=[7, 8], axes=[2, 3], policy='not_larger')),
        ('not_smaller, negative axes', e,
         dict(mode='linear', sizes=[3, 3], axes=[-2, -1], policy='not_smaller')),
        ('half_pixel_symmetric', e, dict(mode='linear', coord='half_pixel_symmetric', scales=[1, 1, .7, 1.4])),
        ('tf_crop_and_resize, extrapolation', d4,
         dict(mode='nearest', coord='tf_crop_and_resize', sizes=[1, 1, 3, 3],
              roi=[0, 0, .4, .6, 1, 1, 1.2, 1.7], extrap=10.0)),
    ]
    for name, X, kw in pins:
        want = resize(X, **kw)
        note = ''
        if ort_dir:
            ort_kw = dict(kw)
            if 'axes' in ort_kw:  # ORT 1.30 ignores sizes with negative axes and a policy
                ort_kw['axes'] = [a % X.ndim for a in ort_kw['axes']]
            got = run_ort(ort_dir, X, ort_kw)
            note = (' ORT: %s' % got if isinstance(got, str)
                    else ' ORT max diff %.3g' % np.abs(got - want).max())
        print('/* Resize %s, shape %s%s */' % (name, list(want.shape), note))
        print(fmt(want))


def gridsample_pins():
    import torch
    import torch.nn.functional as F
    X = np.array([(i * 5 % 7) - i / 4 for i in range(24)], np.float32).reshape(1, 2, 3, 4)
    G = np.array([-1.3, -1.1, -0.7, 0.2, 0.1, 0.9, 0.55, -0.35, 1.2, 0.4, 0.95, 1.45],
                 np.float32).reshape(1, 2, 3, 2)
    for mode in ['bilinear', 'nearest', 'bicubic']:
        for pad in ['zeros', 'border', 'reflection']:
            for ac in [False, True]:
                y = F.grid_sample(torch.tensor(X), torch.tensor(G), mode=mode, padding_mode=pad,
                                  align_corners=ac).numpy()
                print('{"%s", "%s", %d, %s},' % (mode, pad, ac, fmt(y)))
    X3 = np.array([(i * 3 % 5) + i / 8 for i in range(24)], np.float32).reshape(1, 1, 3, 2, 4)
    G3 = np.array([-0.9, 0.3, -0.2, 0.6, -1.2, 0.75, 0.05, 0.5, -0.4, 1.1, -0.8, 0.2],
                  np.float32).reshape(1, 1, 2, 2, 3)
    for mode in ['bilinear', 'nearest']:
        for pad in ['zeros', 'reflection']:
            y = F.grid_sample(torch.tensor(X3), torch.tensor(G3), mode=mode, padding_mode=pad,
                              align_corners=False).numpy()
            print('/* 3-D %s %s */ %s' % (mode, pad, fmt(y)))


def roialign_pins():
    import torch
    from torchvision.ops import roi_align
    X = np.array([((i * 7) % 13) * 0.5 - i / 16 for i in range(120)], np.float32).reshape(2, 2, 5, 6)
    rois = np.array([[0.5, 1.0, 4.2, 3.7], [1.3, 0.2, 2.0, 4.9], [-0.8, 3.1, 6.5, 5.6]], np.float32)
    boxes = torch.cat([torch.tensor([[1.0], [0.0], [1.0]]), torch.tensor(rois)], 1)
    for aligned in [False, True]:
        for sr in [0, 2]:
            y = roi_align(torch.tensor(X), boxes, output_size=(3, 2), spatial_scale=0.8,
                          sampling_ratio=sr, aligned=aligned).numpy()
            print('{%d, %d, %s},' % (aligned, sr, fmt(y)))


if __name__ == '__main__':
    resize_pins(sys.argv[1] if len(sys.argv) > 1 else None)
    gridsample_pins()
    roialign_pins()
