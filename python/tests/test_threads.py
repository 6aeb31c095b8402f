"""One session run from many Python threads at once: each run borrows its own
run context, the GIL is released inside qkv, every result is the one a
single-threaded run gives."""
import threading

import numpy as np

import qkv

THREADS = 8
RUNS = 40


def test_concurrent_runs_match_single_thread(models):
    s = qkv.InferenceSession(models["mlp"].path)
    rng = np.random.default_rng(5)
    # different batch sizes: contexts also switch plans under each other
    xs = [rng.standard_normal((1 + i % 7, 8)).astype(np.float32) for i in range(16)]
    want = [s.run(None, {"x": x}) for x in xs]
    start = threading.Barrier(THREADS)
    failures = []

    def worker(tid):
        start.wait()
        try:
            for r in range(RUNS):
                i = (tid * 5 + r) % len(xs)
                got = s.run(None, {"x": xs[i]})
                if not all(np.array_equal(g, w) for g, w in zip(got, want[i])):
                    failures.append((tid, r, i))
        except Exception as e:  # noqa: BLE001  reported below
            failures.append((tid, repr(e)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    # contexts are reused: never more than the threads that ran at once
    assert 1 <= len(s._contexts) <= THREADS
    s.close()


def test_io_binding_per_thread(models):
    m = models["mlp"]
    s = qkv.InferenceSession(m.path)
    errors = []

    def worker(seed):
        x = np.random.default_rng(seed).standard_normal((3, 8)).astype(np.float32)
        y = np.empty((3, 4), np.float32)
        b = s.io_binding()
        b.bind_cpu_input("x", x)
        b.bind_cpu_output("y", y)
        for _ in range(20):
            s.run_with_iobinding(b)
            if not np.allclose(y, m.reference(x), rtol=1e-5, atol=1e-6):
                errors.append(seed)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
