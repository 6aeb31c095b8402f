#!/usr/bin/env python3
"""Throughput of qkv.dask.map_blocks with 1 and 2 local worker processes,
against the same blocks run in this process without Dask.

Usage: PYTHONPATH=python /usr/bin/python3 bench/dask_throughput.py MODEL.onnx
           [--rows 4096] [--chunk 64] [--seq 64] [--vocab 96] [--repeat 3]

The model's one input is fed [rows, seq] int64 token ids (the example set's
GPT-2-style decoder: build/examples/gpt2/model.onnx) or [rows, seq, vocab]
float32 for a float input; each block is `chunk` rows. Every worker process
has 1 Dask thread and qkv runs with 1 thread per session, so 2 workers use
the 2 cores. After one warm-up job per setup (sessions loaded, plans
built), the setups run interleaved --repeat times; prints each one's best
wall time, the ratios, and the CPU seconds the job took (of this process,
or summed over the worker processes), which a busy machine disturbs less.
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


def cpu_seconds(client):
    """CPU time of this process, or of every worker process of `client`."""
    if client is None:
        return time.process_time()
    return sum(client.run(time.process_time).values())


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

    setups = {"in-process (no Dask), 1 thread": (None, local)}
    clusters = []
    for workers in (1, 2):
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                           processes=True, host="127.0.0.1",
                                           dashboard_address=":0", silence_logs=40)
        client = distributed.Client(cluster)
        clusters.append((cluster, client))
        model = qkv.dask.register(client, a.model, threads=1)
        xd = client.persist(da.from_array(x, chunks=(a.chunk,) + x.shape[1:]))
        y = qkv.dask.map_blocks(model, xd, input_name=name, output_name=out)
        label = f"qkv.dask, {workers} worker process{'es' if workers > 1 else ''}"
        setups[label] = (client, lambda c=client, y=y: c.compute(y).result())
    # warm-up (sessions loaded, plans built), then the setups interleaved
    # `repeat` times, so a change in the machine's load hits all of them
    for client, fn in setups.values():
        fn()
    wall = {k: [] for k in setups}
    cpu = {k: [] for k in setups}
    for _ in range(a.repeat):
        for k, (client, fn) in setups.items():
            c0 = cpu_seconds(client)
            t0 = time.perf_counter()
            fn()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(cpu_seconds(client) - c0)
    for cluster, client in clusters:
        client.close()
        cluster.close()
    load = os.getloadavg()[0]
    base = min(wall["qkv.dask, 1 worker process"])
    print(f"model {a.model}: {a.rows} rows x seq {a.seq}, blocks of {a.chunk} rows, "
          f"best of {a.repeat} interleaved, {os.cpu_count()} CPUs, load average {load:.1f}")
    print("| setup | wall s | rows/s | vs 1 worker | CPU s | rows per CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for k in setups:
        t = min(wall[k])
        c = cpu[k][wall[k].index(t)]
        print(f"| {k} | {t:.3f} | {a.rows / t:,.0f} | {base / t:.2f}x | {c:.2f} | "
              f"{a.rows / c:,.0f} |")


if __name__ == "__main__":
    main()
