"""qkv: an ONNX runtime for attention models, with ONNX Runtime's Python API.

    import qkv as ort
    sess = ort.InferenceSession("model.onnx")
    y, = sess.run(None, {"x": x})

The package is ctypes over libqkv (qkv.h) and numpy; no compiled extension.
"""
from . import _capi
from ._errors import (Cancelled, DTypeError, InternalError, InvalidArgument, InvalidModel,
                      OutOfMemory, PluginError, QkvError, QkvIOError, ShapeError, Unsupported)
from ._session import (GraphOptimizationLevel, InferenceSession, IOBinding, ModelMetadata,
                       NodeArg, RunOptions, SessionOptions, get_available_providers)


def _library_version():
    major, minor, patch = _capi.c_int(), _capi.c_int(), _capi.c_int()
    abi = _capi.c_uint32()
    v = _capi.qkv_version(_capi.ctypes.byref(major), _capi.ctypes.byref(minor),
                          _capi.ctypes.byref(patch), _capi.ctypes.byref(abi))
    return v.decode(), (major.value, minor.value, patch.value), abi.value


__version__, version_info, _plugin_abi = _library_version()
plugin_abi_version = (_plugin_abi >> 16, _plugin_abi & 0xFFFF)
library_path = _capi.library_path


def get_version_string():
    """ORT's name for the version."""
    return __version__


def get_device():
    """ORT's get_device(): qkv runs on the CPU."""
    return "CPU"


__all__ = [
    "InferenceSession", "SessionOptions", "RunOptions", "GraphOptimizationLevel", "NodeArg",
    "IOBinding",
    "ModelMetadata", "get_available_providers", "get_device", "get_version_string",
    "QkvError", "InvalidArgument", "InvalidModel", "Unsupported", "ShapeError", "DTypeError",
    "OutOfMemory", "QkvIOError", "PluginError", "InternalError", "Cancelled", "__version__",
]
