"""qkv.dask on a LocalCluster of 2 worker processes on 127.0.0.1: results
equal a single-process run bit for bit, sessions are loaded once per worker
process, and a job survives a worker killed in its middle."""
import os
import signal
import time

import numpy as np
import pytest

import qkv
import qkv.dask

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

ROWS, CHUNK = 2000, 100


def local_cluster():
    return distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                    host="127.0.0.1", dashboard_address=":0",
                                    silence_logs=40)


@pytest.fixture(scope="module")
def client():
    with local_cluster() as cluster, distributed.Client(cluster) as c:
        yield c


def blockwise_reference(path, x, chunk):
    """The same blocks, run one after another in this process."""
    s = qkv.InferenceSession(path)
    return np.concatenate([s.run(["y"], {"x": x[i:i + chunk]})[0]
                           for i in range(0, len(x), chunk)])


def data(seed=0):
    return np.random.default_rng(seed).standard_normal((ROWS, 8)).astype(np.float32)


def test_blocks_equal_a_single_process_run(client, models):
    path = models["mlp"].path
    x = data()
    y = qkv.dask.map_blocks(path, da.from_array(x, chunks=(CHUNK, 8)), output_name="y")
    assert y.dtype == np.float32 and y.shape == (ROWS, 4)
    got = client.compute(y).result()
    want = blockwise_reference(path, x, CHUNK)
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)
    # every worker process that ran blocks created the session once
    key = qkv.dask.Model(path).key()
    loads = client.run(lambda: qkv.dask.loads().get(key, 0))
    assert len(loads) == 2
    assert all(n <= 1 for n in loads.values()) and sum(loads.values()) >= 1, loads


def test_model_shipped_as_bytes_through_a_worker_plugin(client, models):
    m = models["mlp"]
    model = qkv.dask.register(client, m.bytes)
    # loaded on every worker when registered, before any task
    digests = client.run(lambda: [k[0] for k in qkv.dask.sessions()])
    assert all("sha256:" + model.digest in keys for keys in digests.values())
    import pickle
    assert len(pickle.dumps(model)) < len(m.bytes), "tasks carry the digest, not the bytes"
    x = data(1)
    got = qkv.dask.map_blocks(model, da.from_array(x, chunks=(CHUNK, 8)),
                              output_name="logits").compute()
    s = qkv.InferenceSession(m.bytes)
    want = np.concatenate([s.run(["logits"], {"x": x[i:i + CHUNK]})[0]
                           for i in range(0, ROWS, CHUNK)])
    assert np.array_equal(got, want)


def test_dataframe_partitions(client, models):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    m = models["mlp"]
    x = data(2)
    cols = [f"f{i}" for i in range(8)]
    pdf = pd.DataFrame(x, columns=cols)
    pdf["id"] = np.arange(ROWS)
    ddf = dd.from_pandas(pdf, npartitions=7)
    out = qkv.dask.map_partitions(m.path, ddf, columns=cols, output_name="y",
                                  output_columns=["p0", "p1", "p2", "p3"])
    got = client.compute(out).result()
    assert list(got.columns) == ["p0", "p1", "p2", "p3"]
    assert (got.dtypes == np.float32).all()
    assert np.array_equal(got.index.to_numpy(), np.arange(ROWS))
    s = qkv.InferenceSession(m.path)
    parts = [ddf.get_partition(i).compute() for i in range(ddf.npartitions)]
    want = np.concatenate([s.run(["y"], {"x": p[cols].to_numpy(np.float32)})[0]
                           for p in parts])
    assert np.array_equal(got.to_numpy(), want)


def _slow(block):
    time.sleep(0.05)
    return block


def test_job_survives_a_killed_worker(client, models):
    """Last in the file: it kills one of the shared cluster's workers (its
    nanny starts a new one)."""
    c = client
    path = models["mlp"].path
    x = data(3)
    blocks = ROWS // 25  # 80 blocks of 25 rows, 50 ms each: ~1 s per worker thread
    xs = da.from_array(x, chunks=(25, 8)).map_blocks(_slow, dtype=np.float32)
    y = qkv.dask.map_blocks(path, xs, output_name="y")
    pids = c.run(os.getpid)
    assert len(pids) == 2
    future = c.compute(y)
    deadline = time.time() + 30
    while not any(c.processing().values()) and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # some blocks done, most still to run
    assert not future.done(), "the job must still be running when the worker dies"
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    got = future.result(timeout=120)
    assert victim not in c.run(os.getpid).values()
    assert got.shape == (ROWS, 4)
    want = blockwise_reference(path, x, 25)
    assert blocks == len(range(0, ROWS, 25))
    assert np.array_equal(got, want), "every row exactly once, in order"
