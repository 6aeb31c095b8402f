#!/usr/bin/env python3
"""Throughput of qkv.dask.map_blocks with 1 and 2 local worker processes,
against the same blocks run in this process without Dask.

Usage: PYTHONPATH=python /usr/bin/python3 bench/dask_throughput.py MODEL.onnx
           [--rows 4096] [--chunk 64] [--seq 64] [--vocab 96] [--repeat 3]

The model's one input is fed [rows, seq] int64 token ids (the example set's
GPT-2-style decoder: build/examples/gpt2/model.onnx) or [rows, seq, vocab]
float32 for a float input; each block is `chunk` rows. Every worker process
has 1 Dask thread and qkv runs with 1 thread per session, so 2 workers use
the 2 cores. Prints the best of --repeat timed jobs (after one warm-up job
that loads the sessions) and the ratios.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import qkv  # noqa: E402
import qkv.dask  # noqa: E402


def make_input(s, rows, seq, vocab):
    arg = s.get_inputs()[0]
    rng = np.random.default_rng(0)
    if arg.type == "tensor(int64)":
        return arg.name, rng.integers(0, vocab, (rows, seq), dtype=np.int64)
    return arg.name, rng.standard_normal((rows, seq, vocab)).astype(np.float32)


def best(fn, repeat):
    fn()  # warm-up: sessions loaded, plans built
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=96)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    import dask.array as da
    import distributed

    opts = qkv.SessionOptions()
    opts.intra_op_num_threads = 1
    s = qkv.InferenceSession(a.model, opts)
    name, x = make_input(s, a.rows, a.seq, a.vocab)
    out = s.get_outputs()[0].name

    def local():
        for i in range(0, a.rows, a.chunk):
            s.run([out], {name: x[i:i + a.chunk]})

    results = {"in-process (no Dask), 1 thread": best(local, a.repeat)}
    for workers in (1, 2):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None,
                                      silence_logs=40) as cluster, \
                distributed.Client(cluster) as client:
            model = qkv.dask.register(client, a.model, threads=1)
            xd = client.persist(da.from_array(x, chunks=(a.chunk,) + x.shape[1:]))
            y = qkv.dask.map_blocks(model, xd, input_name=name, output_name=out)
            results[f"qkv.dask, {workers} worker process{'es' if workers > 1 else ''}"] = \
                best(lambda: client.compute(y).result(), a.repeat)
    base = results["qkv.dask, 1 worker process"]
    print(f"model {a.model}: {a.rows} rows x seq {a.seq}, blocks of {a.chunk} rows, "
          f"best of {a.repeat}, {os.cpu_count()} CPUs")
    print(f"| setup | seconds | rows/s | vs 1 worker |")
    print(f"|---|---:|---:|---:|")
    for k, t in results.items():
        print(f"| {k} | {t:.3f} | {a.rows / t:,.0f} | {base / t:.2f}x |")


if __name__ == "__main__":
    main()
