"""InferenceSession, SessionOptions, NodeArg and IOBinding in ONNX Runtime's shape.

A session is shared by every thread that uses it; each concurrent run
borrows a run context from a small pool (one per thread running at that
moment), so `run` may be called from many threads at once. The C calls
release the GIL.
"""
import ctypes
import enum
import logging
import os
import threading
import warnings

import numpy as np

from . import _capi as C
from ._errors import Cancelled, InvalidArgument, DTypeError, raise_status

# qkv dtype code (ONNX TensorProto numbering) <-> numpy dtype and ORT's type name
_DTYPES = {
    1: (np.float32, "float"), 2: (np.uint8, "uint8"), 3: (np.int8, "int8"),
    4: (np.uint16, "uint16"), 5: (np.int16, "int16"), 6: (np.int32, "int32"),
    7: (np.int64, "int64"), 8: (None, "string"), 9: (np.bool_, "bool"),
    10: (np.float16, "float16"), 11: (np.float64, "double"), 12: (np.uint32, "uint32"),
    13: (np.uint64, "uint64"), 14: (np.complex64, "complex64"),
    15: (np.complex128, "complex128"), 16: (None, "bfloat16"),
}
_CODE_OF = {np.dtype(t): code for code, (t, _) in _DTYPES.items() if t is not None}

# ONNX Runtime provider names <-> qkv backends
_PROVIDER_TO_BACKEND = {
    "CPUExecutionProvider": "cpu",
    "DnnlExecutionProvider": "onednn",
    "OpenBLASExecutionProvider": "openblas",
}
_BACKEND_TO_PROVIDER = {b: p for p, b in _PROVIDER_TO_BACKEND.items()}

_log = logging.getLogger("qkv")


def _numpy_dtype(code, what):
    t = _DTYPES.get(code, (None, None))[0]
    if t is None:
        raise DTypeError(f"{what}: element type {C.qkv_dtype_name(code).decode()} has no "
                         "numpy equivalent in the qkv Python package", 5)
    return np.dtype(t)


def _check(status, err):
    if status != 0:
        raise_status(status, err.message.decode("utf-8", "replace"))


class GraphOptimizationLevel(enum.IntEnum):
    """ONNX Runtime's levels: DISABLE_ALL turns off folding and fusion, BASIC
    keeps constant folding only, EXTENDED and ALL run every qkv pass."""
    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_ALL = 99


class SessionOptions:
    """Options for InferenceSession (ONNX Runtime names where they exist).

    intra_op_num_threads: threads each run uses (0: os.cpu_count()).
    graph_optimization_level: see GraphOptimizationLevel.
    enable_fusion: False turns off attention/GELU/MatMul fusion (qkv).
    plugins: plugin library paths to load (qkv; also register_custom_ops_library).
    no_default_plugins: True loads none of the default plugins (qkv).
    backends: backends nodes may go to, in order ("onednn,cpu" or a list) (qkv);
        providers= given to InferenceSession take precedence.
    log_severity_level: 0 verbose .. 3 error (ORT's scale); messages go to the
        Python logger "qkv".
    """

    def __init__(self):
        self.intra_op_num_threads = 0
        self.inter_op_num_threads = 0  # accepted for ORT scripts; qkv runs one graph per call
        self.graph_optimization_level = GraphOptimizationLevel.ORT_ENABLE_ALL
        self.enable_fusion = True
        self.plugins = []
        self.no_default_plugins = False
        self.backends = None
        self.log_severity_level = 2
        self.memory_limit = 0  # qkv: most bytes a session may hold for a run, 0 no limit

    def register_custom_ops_library(self, path):
        """Loads a qkv plugin library with the session (ORT's name for it)."""
        self.plugins.append(os.fspath(path))

    def _threads(self):
        n = int(self.intra_op_num_threads or 0)
        if n < 0:
            raise InvalidArgument(f"intra_op_num_threads is {n}", 1)
        return n if n > 0 else (os.cpu_count() or 1)


class RunOptions:
    """ORT's RunOptions. Setting `terminate = True`, from any thread, stops
    every run using these options at its next node (qkv_context_cancel): the
    run raises qkv.Cancelled. While it stays True, runs with these options
    raise Cancelled at once; set it back to False to run again. run_tag and
    log_severity_level are kept for ORT code and not used."""

    def __init__(self):
        self._lock = threading.Lock()
        self._terminate = False
        self._running = {}  # context -> whether a cancel was sent to it
        self.run_tag = ""
        self.log_severity_level = 2
        self.log_verbosity_level = 0

    @property
    def terminate(self):
        return self._terminate

    @terminate.setter
    def terminate(self, value):
        with self._lock:
            self._terminate = bool(value)
            if self._terminate:
                for ctx in self._running:
                    C.qkv_context_cancel(ctx)
                    self._running[ctx] = True

    def _begin(self, ctx):
        with self._lock:
            if self._terminate:
                raise Cancelled("run cancelled: RunOptions.terminate is set", 10)
            self._running[ctx] = False

    def _end(self, ctx):
        """Whether a cancel went to ctx during the run: it may still be
        pending (the run ended first), so the context is not reused."""
        with self._lock:
            return self._running.pop(ctx, False)


class NodeArg:
    """A model input or output: .name, .type ('tensor(float)'), .shape (ints,
    symbolic dims as str, unknown dims as None; None when the rank is unknown)."""

    def __init__(self, name, type_, shape, dtype_code, kind=0):
        self.name = name
        self.type = type_
        self.shape = shape
        self._dtype_code = dtype_code
        self._kind = kind

    def __repr__(self):
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


def _node_arg(vi):
    name = vi.name.decode()
    type_ = f"tensor({_DTYPES.get(vi.dtype, (None, C.qkv_dtype_name(vi.dtype).decode()))[1]})"
    if vi.kind & C.KIND_SEQUENCE:
        type_ = f"seq({type_})"
    if vi.kind & C.KIND_OPTIONAL:
        type_ = f"optional({type_})"
    if vi.rank < 0:
        shape = None
    else:
        shape = []
        for k in range(vi.rank):
            if vi.dim_params[k]:
                shape.append(vi.dim_params[k].decode())
            elif vi.dims[k] >= 0:
                shape.append(int(vi.dims[k]))
            else:
                shape.append(None)
    return NodeArg(name, type_, shape, vi.dtype, vi.kind)


class ModelMetadata:
    """ORT's ModelMetadata: producer_name, graph_name, domain, description,
    version, custom_metadata_map."""

    def __init__(self, meta, custom):
        self.producer_name = meta.producer_name.decode()
        self.graph_name = meta.graph_name.decode()
        self.domain = meta.domain.decode()
        self.description = meta.doc_string.decode()
        self.version = int(meta.model_version)
        self.custom_metadata_map = custom


def _providers_to_backends(providers):
    """ORT provider names (or (name, options) pairs, or qkv backend names) to
    qkv's backend list; "cpu" always ends it, as ORT always falls back to CPU."""
    backends = []
    for p in providers:
        name = p[0] if isinstance(p, (tuple, list)) else p
        backend = _PROVIDER_TO_BACKEND.get(name)
        if backend is None and name.endswith("ExecutionProvider"):
            warnings.warn(f"qkv: provider {name} is not available; available: "
                          f"{get_available_providers()}", RuntimeWarning, stacklevel=3)
            continue
        backends.append(backend or name)
    if "cpu" not in backends:
        backends.append("cpu")
    return backends


class _Tensors:
    """ctypes tensors over numpy arrays (kept alive here while in use)."""

    def __init__(self, n):
        self.array = (C.Tensor * max(n, 1))()
        self.keep = []

    def set(self, i, arr):
        t = self.array[i]
        t.dtype = _CODE_OF[arr.dtype]
        t.rank = arr.ndim
        for k, d in enumerate(arr.shape):
            t.dims[k] = d
        t.data = arr.ctypes.data if arr.size else None
        t.data_bytes = arr.nbytes
        self.keep.append(arr)


def _names(names):
    arr = (C.c_char_p * max(len(names), 1))()
    for i, n in enumerate(names):
        arr[i] = n.encode()
    return arr


def _tensor_to_numpy(t, what, copy=True):
    dtype = _numpy_dtype(t.dtype, what)
    shape = tuple(t.dims[k] for k in range(t.rank))
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if n == 0 or not t.data:
        return np.zeros(shape, dtype=dtype)
    buf = (ctypes.c_char * (n * dtype.itemsize)).from_address(t.data)
    arr = np.frombuffer(buf, dtype=dtype, count=n).reshape(shape)
    return arr.copy() if copy else arr


class InferenceSession:
    """A loaded model, ready to run from any number of threads.

    InferenceSession(path_or_bytes, sess_options=None, providers=None)
    providers: ORT provider names mapped onto qkv backends
    ("DnnlExecutionProvider" -> onednn, "CPUExecutionProvider" -> cpu,
    "OpenBLASExecutionProvider" -> openblas), or qkv backend names.
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None,
                 provider_options=None, **kwargs):
        self._session = None
        self._lock = threading.Lock()
        self._free = []      # idle run contexts
        self._contexts = []  # every context, destroyed with the session
        self._sess_options = sess_options or SessionOptions()
        o = self._sess_options
        opts = C.SessionOptions()
        C.qkv_session_options_init(ctypes.byref(opts))
        opts.threads = o._threads()
        level = GraphOptimizationLevel(o.graph_optimization_level)
        opts.disable_fusion = int(not o.enable_fusion or level < GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
        opts.disable_folding = int(level == GraphOptimizationLevel.ORT_DISABLE_ALL)
        plugins = [os.fspath(p) for p in o.plugins]
        self._plugin_names = _names(plugins)
        opts.plugins = self._plugin_names
        opts.n_plugins = len(plugins)
        opts.no_default_plugins = int(bool(o.no_default_plugins))
        opts.memory_limit = int(getattr(o, "memory_limit", 0) or 0)
        backends = o.backends
        if providers:
            backends = _providers_to_backends(providers)
        if isinstance(backends, (list, tuple)):
            backends = ",".join(backends)
        self._backends_arg = backends.encode() if backends else None
        opts.backends = self._backends_arg
        # qkv levels: 0 error .. 3 debug; ORT severities: 0 verbose .. 3 error
        opts.log_level = max(0, min(3, 3 - int(o.log_severity_level)))
        self._log_cb = C.LOG_CALLBACK(_log_message)
        opts.log = self._log_cb
        err = C.Error()
        handle = C.c_void_p()
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            data = bytes(path_or_bytes)
            st = C.qkv_session_create_from_buffer(data, len(data), None, ctypes.byref(opts),
                                                  ctypes.byref(handle), ctypes.byref(err))
            self._model_path = None
        else:
            path = os.fspath(path_or_bytes)
            st = C.qkv_session_create(path.encode(), ctypes.byref(opts), ctypes.byref(handle),
                                      ctypes.byref(err))
            self._model_path = path
        _check(st, err)
        self._session = handle.value
        self._model = C.qkv_session_model(self._session)
        self._inputs = [self._value(C.qkv_model_input, i)
                        for i in range(C.qkv_model_input_count(self._model))]
        self._outputs = [self._value(C.qkv_model_output, i)
                         for i in range(C.qkv_model_output_count(self._model))]
        self._output_index = {a.name: i for i, a in enumerate(self._outputs)}
        self._input_index = {a.name: i for i, a in enumerate(self._inputs)}

    def _value(self, fn, i):
        vi = C.ValueInfo(struct_size=ctypes.sizeof(C.ValueInfo))
        fn(self._model, i, ctypes.byref(vi))
        return _node_arg(vi)

    # ---- description ------------------------------------------------------------

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def get_overridable_initializers(self):
        return []

    def get_modelmeta(self):
        meta = C.ModelMeta(struct_size=ctypes.sizeof(C.ModelMeta))
        C.qkv_model_get_meta(self._model, ctypes.byref(meta))
        custom = {}
        for i in range(meta.metadata_count):
            k, v = C.c_char_p(), C.c_char_p()
            C.qkv_model_metadata(self._model, i, ctypes.byref(k), ctypes.byref(v))
            custom[k.value.decode()] = v.value.decode()
        return ModelMetadata(meta, custom)

    def get_providers(self):
        """The session's backends in dispatch order, as provider names."""
        n = C.qkv_session_backend_count(self._session)
        names = [C.qkv_session_backend_name(self._session, i).decode() for i in range(n)]
        return [_BACKEND_TO_PROVIDER.get(b, b) for b in names]

    def get_session_options(self):
        return self._sess_options

    # ---- running --------------------------------------------------------------------

    def _acquire(self):
        with self._lock:
            if self._session is None:
                raise InvalidArgument("the session is closed", 1)
            if self._free:
                return self._free.pop()
        ctx = C.c_void_p()
        err = C.Error()
        _check(C.qkv_context_create(self._session, ctypes.byref(ctx), ctypes.byref(err)), err)
        with self._lock:
            self._contexts.append(ctx.value)
        return ctx.value

    def _release(self, ctx, discard=False):
        """Returns ctx to the pool; discard=True destroys it instead (a
        cancel may be pending on it)."""
        with self._lock:
            if not discard:
                self._free.append(ctx)
                return
            self._contexts.remove(ctx)
        C.qkv_context_destroy(ctx)

    def _run_begin(self, run_options):
        """A context for one run, registered with run_options (or None)."""
        ctx = self._acquire()
        if run_options is not None:
            try:
                run_options._begin(ctx)
            except BaseException:
                self._release(ctx)
                raise
        return ctx

    def _run_end(self, ctx, run_options):
        self._release(ctx, run_options is not None and run_options._end(ctx))

    def _input_array(self, name, value):
        i = self._input_index.get(name)
        if i is None:
            raise InvalidArgument(f"the model has no input named '{name}' (inputs: "
                                  f"{', '.join(self._input_index)})", 1)
        want = _numpy_dtype(self._inputs[i]._dtype_code, f"input '{name}'")
        arr = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=want)
        if arr.dtype != want:
            if not np.can_cast(arr.dtype, want, casting="same_kind"):
                raise DTypeError(f"input '{name}' is {arr.dtype}, the model takes "
                                 f"{self._inputs[i].type}", 5)
            arr = arr.astype(want)
        # zero-copy when already C-contiguous and of the right dtype; the
        # reshape keeps a 0-d array 0-d (ascontiguousarray returns ndim >= 1)
        out = np.ascontiguousarray(arr)
        return out if out.shape == arr.shape else out.reshape(arr.shape)

    def _run_values(self, output_names, input_feed, run_options=None):
        """run() for models with sequence or optional inputs or outputs: a
        sequence is a list of arrays, an empty optional None."""
        missing = [a.name for a in self._inputs if a.name not in input_feed]
        if missing:
            raise InvalidArgument(f"missing inputs: {', '.join(missing)}", 1)
        for name in input_feed:
            if name not in self._input_index:
                raise InvalidArgument(f"the model has no input named '{name}'", 1)
        values = (C.Value * max(len(self._inputs), 1))()
        keep = []
        for i, arg in enumerate(self._inputs):
            feed = input_feed[arg.name]
            v = values[i]
            v.struct_size = ctypes.sizeof(C.Value)
            v.kind = arg._kind
            v.elem_dtype = arg._dtype_code
            v.has_element = int(feed is not None)
            if feed is None:
                items = []
            elif arg._kind & C.KIND_SEQUENCE:
                items = list(feed)
            else:
                items = [feed]
            ts = _Tensors(len(items))
            for k, item in enumerate(items):
                ts.set(k, self._input_array(arg.name, item))
            keep.append(ts)
            v.count = len(items)
            v.tensors = ts.array
        ctx = self._run_begin(run_options)
        try:
            err = C.Error()
            _check(C.qkv_run_values(ctx, values, len(self._inputs), ctypes.byref(err)), err)
            result = []
            for name in output_names:
                j = self._output_index.get(name)
                if j is None:
                    raise InvalidArgument(f"the model has no output named '{name}'", 1)
                out = C.Value(struct_size=ctypes.sizeof(C.Value))
                C.qkv_context_output_value(ctx, j, ctypes.byref(out))
                arrays = [_tensor_to_numpy(out.tensors[k], f"output '{name}'")
                          for k in range(out.count)]
                if not out.has_element:
                    result.append(None)
                elif out.kind & C.KIND_SEQUENCE:
                    result.append(arrays)
                else:
                    result.append(arrays[0])
            return result
        finally:
            self._run_end(ctx, run_options)

    def run(self, output_names, input_feed, run_options=None):
        """Runs the model: input_feed maps input names to arrays; returns the
        outputs named in output_names (None: all) as numpy arrays. A sequence
        is a list of arrays; an empty optional is None."""
        if output_names is None:
            output_names = [a.name for a in self._outputs]
        if any(a._kind for a in self._inputs) or any(
                self._outputs[self._output_index[n]]._kind for n in output_names
                if n in self._output_index):
            return self._run_values(output_names, input_feed, run_options)
        names = list(input_feed)
        ins = _Tensors(len(names))
        for i, name in enumerate(names):
            ins.set(i, self._input_array(name, input_feed[name]))
        if output_names is None:
            output_names = [a.name for a in self._outputs]
        outs = (C.Tensor * max(len(output_names), 1))()
        in_names = _names(names)
        out_names = _names(output_names)
        ctx = self._run_begin(run_options)
        try:
            err = C.Error()
            st = C.qkv_run_io(ctx, in_names, ins.array, len(names), out_names, outs,
                              len(output_names), ctypes.byref(err))
            _check(st, err)
            # the outputs belong to the context until its next run: copy them out
            return [_tensor_to_numpy(outs[j], f"output '{output_names[j]}'")
                    for j in range(len(output_names))]
        finally:
            self._run_end(ctx, run_options)

    def io_binding(self):
        return IOBinding(self)

    def run_with_iobinding(self, iobinding, run_options=None):
        iobinding._run(run_options)

    def close(self):
        with self._lock:
            session, self._session = self._session, None
            contexts, self._contexts, self._free = self._contexts, [], []
        for c in contexts:
            C.qkv_context_destroy(c)
        if session:
            C.qkv_session_destroy(session)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _log_message(user, level, message):
    text = message.decode("utf-8", "replace")
    _log.log({0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(level, logging.DEBUG),
             "%s", text)


class IOBinding:
    """Inputs and outputs bound to caller arrays (ORT's IOBinding).

    bind_cpu_input(name, array): the array is read in place when C-contiguous
        and of the model's dtype (else a converted copy is kept).
    bind_cpu_output(name, array): qkv writes the output straight into `array`
        (C-contiguous, the output's dtype and shape, writable): no copy.
        A KV cache can be extended in place: bind past as cache[:, :t] and
        present as cache[:, :t+1] of one array (see qkv_run_io in qkv.h).
    bind_output(name, device_type='cpu', device_id=0, element_type=None,
        shape=None, buffer_ptr=None): ORT's form; with buffer_ptr, a raw
        destination of element_type and shape; without, qkv allocates.
    get_outputs() / copy_outputs_to_cpu(): the outputs of the last run (bound
        arrays themselves; for unbound outputs, copies).
    """

    def __init__(self, session):
        self._s = session
        self._inputs = {}
        self._outputs = {}  # name -> ndarray or None (qkv allocates)
        self._results = None

    def bind_cpu_input(self, name, array):
        self._inputs[name] = self._s._input_array(name, array)

    def bind_input(self, name, device_type, device_id, element_type, shape, buffer_ptr):
        if device_type != "cpu":
            raise InvalidArgument(f"device '{device_type}': qkv runs on the CPU", 1)
        dtype = np.dtype(element_type)
        n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
        buf = (ctypes.c_char * (n * dtype.itemsize)).from_address(buffer_ptr)
        self._inputs[name] = np.frombuffer(buf, dtype=dtype).reshape(shape)

    def bind_cpu_output(self, name, array):
        if name not in self._s._output_index:
            raise InvalidArgument(f"the model has no output named '{name}'", 1)
        if not isinstance(array, np.ndarray) or not array.flags.c_contiguous \
                or not array.flags.writeable:
            raise InvalidArgument(f"output '{name}': bind a writable C-contiguous numpy array", 1)
        self._outputs[name] = array

    def bind_output(self, name, device_type="cpu", device_id=0, element_type=None, shape=None,
                    buffer_ptr=None):
        if device_type != "cpu":
            raise InvalidArgument(f"device '{device_type}': qkv runs on the CPU", 1)
        if buffer_ptr is None:
            if name not in self._s._output_index:
                raise InvalidArgument(f"the model has no output named '{name}'", 1)
            self._outputs[name] = None
            return
        dtype = np.dtype(element_type)
        n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
        buf = (ctypes.c_char * (n * dtype.itemsize)).from_address(buffer_ptr)
        self.bind_cpu_output(name, np.frombuffer(buf, dtype=dtype).reshape(shape))

    def clear_binding_inputs(self):
        self._inputs = {}

    def clear_binding_outputs(self):
        self._outputs = {}

    def _run(self, run_options=None):
        s = self._s
        names = list(self._inputs)
        ins = _Tensors(len(names))
        for i, n in enumerate(names):
            ins.set(i, self._inputs[n])
        out_names = list(self._outputs) or [a.name for a in s._outputs]
        outs = (C.Tensor * max(len(out_names), 1))()
        keep = _Tensors(len(out_names))
        for j, n in enumerate(out_names):
            arr = self._outputs.get(n)
            if arr is not None:
                if arr.dtype not in _CODE_OF:
                    raise DTypeError(f"output '{n}': numpy dtype {arr.dtype} is not supported", 5)
                keep.set(j, arr)
                outs[j] = keep.array[j]
                if not arr.size:
                    outs[j].data = None  # an empty output needs no buffer
        ctx = s._run_begin(run_options)
        try:
            err = C.Error()
            st = C.qkv_run_io(ctx, _names(names), ins.array, len(names), _names(out_names), outs,
                              len(out_names), ctypes.byref(err))
            _check(st, err)
            results = []
            for j, n in enumerate(out_names):
                arr = self._outputs.get(n)
                results.append(arr if arr is not None
                               else _tensor_to_numpy(outs[j], f"output '{n}'"))
            self._results = results
        finally:
            s._run_end(ctx, run_options)

    def get_outputs(self):
        if self._results is None:
            raise InvalidArgument("no run with this binding yet", 1)
        return list(self._results)

    def copy_outputs_to_cpu(self):
        return [np.array(a) for a in self.get_outputs()]


_available = None


def get_available_providers():
    """The backends this qkv has (built-in cpu and the default plugins'), as
    ORT-style provider names, in qkv's default dispatch order."""
    global _available
    if _available is None:
        s = InferenceSession(_identity_model())
        _available = s.get_providers()
        s.close()
    return list(_available)


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num, payload):
    if isinstance(payload, int):
        return _varint(num << 3) + _varint(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _identity_model():
    """A one-node ONNX model (y = Identity(x), float [1]) as protobuf bytes,
    written by hand so that the package needs no onnx module."""
    dim = _field(1, 1)                                         # TensorShapeProto.Dimension.dim_value
    shape = _field(1, dim)                                     # TensorShapeProto.dim
    tensor_type = _field(1, 1) + _field(2, shape)              # elem_type FLOAT, shape
    type_proto = _field(1, tensor_type)                        # TypeProto.tensor_type
    x = _field(1, "x") + _field(2, type_proto)                 # ValueInfoProto
    y = _field(1, "y") + _field(2, type_proto)
    node = _field(1, "x") + _field(2, "y") + _field(4, "Identity")
    graph = _field(1, node) + _field(2, "g") + _field(11, x) + _field(12, y)
    opset = _field(2, 17)                                      # OperatorSetIdProto.version
    return _field(1, 8) + _field(7, graph) + _field(8, opset)  # ir_version, graph, opset_import
