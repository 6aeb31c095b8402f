"""qkv's status codes as Python exceptions.

Every failure of the C library raises a QkvError subclass carrying the C
message (which names the node, op and tensor) and the status code. The
subclasses also derive from the matching built-in exception, so code that
catches ValueError, TypeError, MemoryError or OSError keeps working.
"""


class QkvError(Exception):
    """A qkv failure: .status is the qkv_status code, .message the C message."""

    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidArgument(QkvError, ValueError):
    status = 1


class InvalidModel(QkvError, ValueError):
    status = 2


class Unsupported(QkvError, NotImplementedError):
    status = 3


class ShapeError(QkvError, ValueError):
    status = 4


class DTypeError(QkvError, TypeError):
    status = 5


class OutOfMemory(QkvError, MemoryError):
    status = 6


class QkvIOError(QkvError, OSError):
    status = 7

    def __init__(self, message, status=None):
        OSError.__init__(self, message)
        self.message = message


class PluginError(QkvError):
    status = 8


class InternalError(QkvError):
    status = 9


class Cancelled(QkvError):
    """The run was stopped: RunOptions.terminate (qkv_context_cancel)."""
    status = 10


_BY_STATUS = {c.status: c for c in (InvalidArgument, InvalidModel, Unsupported, ShapeError,
                                    DTypeError, OutOfMemory, QkvIOError, PluginError,
                                    InternalError, Cancelled)}


def raise_status(status, message):
    """Raises the QkvError subclass for a non-zero qkv_status."""
    cls = _BY_STATUS.get(status, QkvError)
    raise cls(message or f"qkv error {status}", status)
