"""ctypes declarations of qkv.h, and finding libqkv.

The library is found, in this order: the QKV_LIBRARY environment variable
(a path); a libqkv.so* beside this package; the installed library at the
path `cmake --install` recorded in _install_paths.py (relative to this
package, so a moved prefix still works); the build tree of a source
checkout (python/qkv/../../build/libqkv.so); the system's library path.

ctypes.CDLL releases the GIL around every foreign call, so runs on other
Python threads proceed while one thread is inside qkv.
"""
import ctypes
import ctypes.util
import glob
import os

QKV_MAX_RANK = 12
ERROR_MESSAGE_BYTES = 512

c_size_t = ctypes.c_size_t
c_int = ctypes.c_int
c_int32 = ctypes.c_int32
c_int64 = ctypes.c_int64
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64
c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
POINTER = ctypes.POINTER


class Error(ctypes.Structure):
    _fields_ = [("status", c_int), ("message", ctypes.c_char * ERROR_MESSAGE_BYTES)]


class Tensor(ctypes.Structure):
    _fields_ = [("dtype", c_int), ("rank", c_int32), ("dims", c_int64 * QKV_MAX_RANK),
                ("data", c_void_p), ("data_bytes", c_size_t)]


class ValueInfo(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("name", c_char_p), ("dtype", c_int),
                ("rank", c_int32), ("dims", POINTER(c_int64)), ("dim_params", POINTER(c_char_p)),
                ("kind", c_int)]


# qkv_type_kind: a tensor, a sequence, an optional (of a tensor or a sequence)
KIND_TENSOR, KIND_SEQUENCE, KIND_OPTIONAL, KIND_OPTIONAL_SEQUENCE = 0, 1, 2, 3


class Value(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("kind", c_int), ("elem_dtype", c_int),
                ("has_element", c_int), ("count", c_size_t), ("tensors", POINTER(Tensor))]


class ModelMeta(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("ir_version", c_int64), ("model_version", c_int64),
                ("producer_name", c_char_p), ("producer_version", c_char_p),
                ("domain", c_char_p), ("doc_string", c_char_p), ("graph_name", c_char_p),
                ("opset_count", c_size_t), ("metadata_count", c_size_t),
                ("node_count", c_size_t), ("initializer_count", c_size_t),
                ("initializer_bytes", c_uint64)]


LOG_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)


class SessionOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("threads", c_size_t), ("disable_fusion", c_int),
                ("disable_folding", c_int), ("plugins", POINTER(c_char_p)),
                ("n_plugins", c_size_t), ("no_default_plugins", c_int), ("backends", c_char_p),
                ("memory_limit", c_size_t), ("log", LOG_CALLBACK), ("log_user", c_void_p), ("log_level", c_int)]


def _candidates():
    env = os.environ.get("QKV_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield from sorted(glob.glob(os.path.join(here, "libqkv.so*")))
    try:
        from . import _install_paths  # written by `cmake --install`
        yield os.path.normpath(os.path.join(here, _install_paths.LIBRARY))
    except ImportError:
        pass
    yield os.path.normpath(os.path.join(here, "..", "..", "build", "libqkv.so"))
    found = ctypes.util.find_library("qkv")
    if found:
        yield found


def _load():
    tried = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(path + " (missing)")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError("qkv: cannot find libqkv (set QKV_LIBRARY to its path); tried: "
                      + "; ".join(tried or ["nothing"]))


lib, library_path = _load()


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


P = POINTER
qkv_version = _fn("qkv_version", c_char_p, P(c_int), P(c_int), P(c_int), P(c_uint32))
qkv_status_string = _fn("qkv_status_string", c_char_p, c_int)
qkv_dtype_name = _fn("qkv_dtype_name", c_char_p, c_int)
qkv_session_options_init = _fn("qkv_session_options_init", None, P(SessionOptions))
qkv_session_create = _fn("qkv_session_create", c_int, c_char_p, P(SessionOptions),
                         P(c_void_p), P(Error))
qkv_session_create_from_buffer = _fn("qkv_session_create_from_buffer", c_int, c_void_p,
                                     c_size_t, c_char_p, P(SessionOptions), P(c_void_p),
                                     P(Error))
qkv_session_destroy = _fn("qkv_session_destroy", None, c_void_p)
qkv_session_model = _fn("qkv_session_model", c_void_p, c_void_p)
qkv_model_get_meta = _fn("qkv_model_get_meta", c_int, c_void_p, P(ModelMeta))
qkv_model_metadata = _fn("qkv_model_metadata", None, c_void_p, c_size_t, P(c_char_p),
                         P(c_char_p))
qkv_model_input_count = _fn("qkv_model_input_count", c_size_t, c_void_p)
qkv_model_output_count = _fn("qkv_model_output_count", c_size_t, c_void_p)
qkv_model_input = _fn("qkv_model_input", c_int, c_void_p, c_size_t, P(ValueInfo))
qkv_model_output = _fn("qkv_model_output", c_int, c_void_p, c_size_t, P(ValueInfo))
qkv_session_backend_count = _fn("qkv_session_backend_count", c_size_t, c_void_p)
qkv_session_backend_name = _fn("qkv_session_backend_name", c_char_p, c_void_p, c_size_t)
qkv_session_plugin_count = _fn("qkv_session_plugin_count", c_size_t, c_void_p)
qkv_context_create = _fn("qkv_context_create", c_int, c_void_p, P(c_void_p), P(Error))
qkv_context_destroy = _fn("qkv_context_destroy", None, c_void_p)
qkv_context_cancel = _fn("qkv_context_cancel", None, c_void_p)
qkv_context_output = _fn("qkv_context_output", P(Tensor), c_void_p, c_size_t)
qkv_run_values = _fn("qkv_run_values", c_int, c_void_p, P(Value), c_size_t, P(Error))
qkv_context_output_value = _fn("qkv_context_output_value", c_int, c_void_p, c_size_t, P(Value))
qkv_run_io = _fn("qkv_run_io", c_int, c_void_p, P(c_char_p), P(Tensor), c_size_t,
                 P(c_char_p), P(Tensor), c_size_t, P(Error))


def _check_layout():
    """The library's qkv_session_options must be the one declared here (a
    library from another qkv.h would read garbage): init writes its size."""
    buf = (ctypes.c_char * 4096)()
    qkv_session_options_init(ctypes.cast(buf, P(SessionOptions)))
    size = c_size_t.from_buffer(buf).value
    if size != ctypes.sizeof(SessionOptions):
        raise ImportError(f"qkv: {library_path} has a qkv_session_options of {size} bytes, this "
                          f"package declares {ctypes.sizeof(SessionOptions)}: mismatched "
                          "versions of the package and the library")


_check_layout()
