"""Batch inference with qkv on Dask (dask.array blocks, dask.dataframe partitions).

    import dask.array as da, qkv.dask
    x = da.from_array(big, chunks=(1024, 64))           # rows split into blocks
    y = qkv.dask.map_blocks("model.onnx", x)            # lazy dask array
    y.compute()                                          # in order, same dtype

Each worker process creates one qkv session per model (and options), once,
and keeps it (a per-process cache, `sessions()`); every task on that process
shares it, each running thread with its own run context. The model is
shipped as a path (a file every worker can read: a shared filesystem) or as
bytes; with bytes, `register(client, model)` sends them to every worker once
through a worker plugin (also to workers that join or restart later), after
which tasks carry only the model's digest. Without it, the bytes travel with
the tasks and are loaded once per process all the same.

Rows are independent: a block is run as one batch (the model's first input
axis), so the result of a block is the same wherever it runs, and Dask's
rescheduling after a lost worker recomputes exactly the lost blocks.
"""
import hashlib
import os
import threading

import numpy as np

from ._session import InferenceSession, SessionOptions, _numpy_dtype

_cache_lock = threading.Lock()
_sessions = {}     # (model key, options) -> InferenceSession, per process
_model_bytes = {}  # digest -> bytes, sent by ModelPlugin
_loads = {}        # model key -> sessions created in this process (1 unless closed)


class Model:
    """A picklable reference to a model: a path, or bytes (by digest).

    threads: intra-op threads of the session on each worker (see
    docs/distributed.md: workers x threads per worker x qkv threads should
    not exceed the cores). providers: as for InferenceSession.
    """

    def __init__(self, model, threads=1, providers=None, enable_fusion=True):
        if isinstance(model, Model):
            model = model.path if model.path else model.data
        if isinstance(model, (bytes, bytearray, memoryview)):
            self.path = None
            self.data = bytes(model)
            self.digest = hashlib.sha256(self.data).hexdigest()
        else:
            self.path = os.path.abspath(os.fspath(model))
            self.data = None
            self.digest = None
        self.threads = int(threads)
        self.providers = list(providers) if providers else None
        self.enable_fusion = bool(enable_fusion)
        self.ship_bytes = True  # False once a ModelPlugin carries them

    def key(self):
        return (self.path or "sha256:" + self.digest, self.threads,
                tuple(self.providers or ()), self.enable_fusion)

    def __dask_tokenize__(self):
        return self.key()

    def __getstate__(self):
        state = dict(self.__dict__)
        if not self.ship_bytes:
            state["data"] = None
        return state

    def session(self):
        """This process's session for the model, created on first use."""
        key = self.key()
        with _cache_lock:
            s = _sessions.get(key)
            if s is not None:
                return s
            data = self.data if self.data is not None else _model_bytes.get(self.digest)
            if self.path is None and data is None:
                raise RuntimeError(f"qkv.dask: model {self.digest[:12]} is not on this worker "
                                   "(register it with qkv.dask.register(client, model))")
            opts = SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.enable_fusion = self.enable_fusion
            s = InferenceSession(self.path or data, opts, providers=self.providers)
            _sessions[key] = s
            _loads[key] = _loads.get(key, 0) + 1
            return s


def sessions():
    """The sessions this process has loaded: {model key: InferenceSession}."""
    with _cache_lock:
        return dict(_sessions)


def loads():
    """How many sessions this process created per model key (Model.key())."""
    with _cache_lock:
        return dict(_loads)


class ModelPlugin:
    """A distributed WorkerPlugin that puts a model's bytes on each worker and
    loads its session when the worker starts (and again on a restarted one)."""

    def __init__(self, model):
        self.model = model
        self.name = "qkv-model-" + (model.digest or model.path)[:16]

    def setup(self, worker=None):
        if self.model.data is not None:
            _model_bytes[self.model.digest] = self.model.data
        self.model.session()

    def teardown(self, worker=None):
        pass


def register(client, model, threads=1, providers=None, enable_fusion=True):
    """Loads `model` (path or bytes) on every worker of `client` now, and on
    every worker that starts later; returns the Model to pass to map_blocks /
    map_partitions (with bytes, its tasks then carry only the digest)."""
    m = model if isinstance(model, Model) else Model(model, threads, providers, enable_fusion)
    plugin_model = Model(m.path or m.data, m.threads, m.providers, m.enable_fusion)
    client.register_worker_plugin(ModelPlugin(plugin_model), name=ModelPlugin(m).name)
    m.ship_bytes = False
    return m


def _run_block(block, model, input_name, output_name):
    s = model.session()
    return s.run([output_name], {input_name: block})[0]


def _names(model, input_name, output_name):
    s = model.session()  # in this process: to read names, dtypes, trailing shape
    ins, outs = s.get_inputs(), s.get_outputs()
    if input_name is None:
        if len(ins) != 1:
            raise ValueError(f"the model has {len(ins)} inputs: name the one to feed "
                             f"(input_name=)")
        input_name = ins[0].name
    if output_name is None:
        output_name = outs[0].name
    return s, input_name, output_name


def _input_dtype(s, input_name):
    for a in s.get_inputs():
        if a.name == input_name:
            return _numpy_dtype(a._dtype_code, f"input '{input_name}'")
    raise ValueError(f"the model has no input named '{input_name}'")


def _probe(s, input_name, output_name, trailing, dtype):
    """The output's dtype and dims after the first, from one row of zeros."""
    y = s.run([output_name], {input_name: np.zeros((1,) + tuple(trailing), dtype=dtype)})[0]
    return y.dtype, y.shape[1:]


def map_blocks(model, x, input_name=None, output_name=None, threads=1, providers=None):
    """Runs the model over the row blocks of the dask array x (chunked along
    axis 0 only; the model's batch axis) and returns the output as a dask array
    with the same row chunks, in order. model: a path, bytes, or a Model."""
    import dask.array as da

    m = model if isinstance(model, Model) else Model(model, threads, providers)
    s, input_name, output_name = _names(m, input_name, output_name)
    want = _input_dtype(s, input_name)
    x = x.astype(want) if x.dtype != want else x
    if any(len(c) > 1 for c in x.chunks[1:]):
        x = x.rechunk({i: -1 for i in range(1, x.ndim)})
    out_dtype, out_trailing = _probe(s, input_name, output_name, x.shape[1:], want)
    chunks = (x.chunks[0],) + tuple((d,) for d in out_trailing)
    drop = tuple(range(len(out_trailing) + 1, x.ndim)) if x.ndim > len(out_trailing) + 1 else ()
    new = tuple(range(x.ndim, len(out_trailing) + 1)) if len(out_trailing) + 1 > x.ndim else ()
    return da.map_blocks(_run_block, x, m, input_name, output_name, dtype=out_dtype,
                         chunks=chunks, drop_axis=drop, new_axis=new,
                         meta=np.empty((0,) * (len(out_trailing) + 1), dtype=out_dtype))


def _run_partition(part, model, columns, input_name, output_name, out_columns, in_dtype):
    import pandas as pd

    x = part[columns].to_numpy(dtype=in_dtype)
    y = model.session().run([output_name], {input_name: x})[0]
    y = y.reshape(len(part), -1)
    return pd.DataFrame(y, index=part.index, columns=out_columns)


def map_partitions(model, df, columns=None, input_name=None, output_name=None,
                   output_columns=None, threads=1, providers=None):
    """Runs the model over the partitions of the dask dataframe df: each
    partition's `columns` (default: all) become one [rows, len(columns)]
    input; the output [rows, k] becomes a dataframe with `output_columns`
    (default OUTPUT_0 .. OUTPUT_k-1) and df's index, partition by partition."""
    import pandas as pd

    m = model if isinstance(model, Model) else Model(model, threads, providers)
    s, input_name, output_name = _names(m, input_name, output_name)
    columns = list(columns) if columns is not None else list(df.columns)
    in_dtype = _input_dtype(s, input_name)
    out_dtype, trailing = _probe(s, input_name, output_name, (len(columns),), in_dtype)
    k = int(np.prod(trailing)) if trailing else 1
    if output_columns is None:
        output_columns = [f"{output_name}_{i}" for i in range(k)]
    meta = pd.DataFrame({c: np.empty(0, dtype=out_dtype) for c in output_columns})
    return df.map_partitions(_run_partition, m, columns, input_name, output_name,
                             list(output_columns), in_dtype, meta=meta)
