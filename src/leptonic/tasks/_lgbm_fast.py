"""Single-row LightGBM prediction through the C API's *fast* single-row functions.

``Booster.predict`` on one row costs 50–600 µs, nearly all of it Python and
ctypes set-up: a fresh ``_InnerPredictor``, parameter parsing, input checks and
an output array per call. LightGBM's C API has a path made for serving: one
``LGBM_BoosterPredictForMatSingleRowFastInit`` parses the parameters and builds
the predictor once, returning a *FastConfig* handle; each
``LGBM_BoosterPredictForMatSingleRowFast`` then scores one row into a buffer
the caller owns. :class:`FastPredictor` wraps that pair with preallocated input
and output buffers, so a call costs the tree walk plus about a microsecond.

The C signatures (LightGBM 4.x, ``include/LightGBM/c_api.h``)::

    int LGBM_BoosterPredictForMatSingleRowFastInit(
        BoosterHandle handle, const int predict_type, const int start_iteration,
        const int num_iteration, const int data_type, const int32_t ncol,
        const char* parameter, FastConfigHandle* out_fastConfig);
    int LGBM_BoosterPredictForMatSingleRowFast(
        FastConfigHandle fastConfig_handle, const void* data,
        int64_t* out_len, double* out_result);
    int LGBM_FastConfigFree(FastConfigHandle fastConfig);

The results equal ``Booster.predict`` on the same row bit for bit: both run the
same C++ ``Predictor`` with the same (empty) prediction parameters and the same
iteration count (:func:`num_iteration`, as the batch path chooses it).

**Threads.** A FastConfig owns a predictor with scratch buffers, guarded by a
mutex in C++, and this class adds its own input and output buffers. By default
(``per_thread=True``) every thread that predicts gets its own FastConfig and
buffers on first use (thread-local; freed when the thread ends or the
predictor is collected), so threads never share state and, since ctypes
releases the GIL during the call, their tree walks may run in parallel. With
``per_thread=False`` one FastConfig and one set of buffers are shared behind a
``threading.Lock``. Measured on a 5-tree model, where the call overhead is
all there is, a thread-local call costs about 1.2 µs and a locked one 1.9 µs
(``benchmarks/decisions.py`` compares both on a real model): thread-local is
the default, being cheaper and never serialising threads.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, LightGBMError

__all__ = ["KINDS", "FastPredictor", "num_iteration"]

#: ``predict_type`` of each kind of output (``C_API_PREDICT_*`` in c_api.h).
KINDS = {"normal": 0, "raw": 1, "leaf": 2, "contrib": 3}
_C_API_DTYPE_FLOAT64 = 1

Kind = Literal["normal", "raw", "leaf", "contrib"]


def num_iteration(booster: Any) -> int:
    """The number of iterations the batch path predicts with; ``-1`` means all.

    ``TabularPredictor`` predicts in batch with ``num_iteration=best_iteration``
    when early stopping recorded one, and with every tree otherwise (LightGBM
    treats any value ``<= 0`` as "no limit").
    """
    best = getattr(booster, "best_iteration", 0) or 0
    return int(best) if best > 0 else -1


def _check(ret: int) -> None:
    if ret != 0:
        raise LightGBMError(_LIB.LGBM_GetLastError().decode("utf-8"))


def _free(handle: int, booster: lgb.Booster) -> None:
    """Free a FastConfig; ``booster`` rides along so that it outlives the handle."""
    _LIB.LGBM_FastConfigFree(ctypes.c_void_p(handle))


class _Slot:
    """One FastConfig with its input and output buffers; freed when collected."""

    __slots__ = ("__weakref__", "args", "free", "inp", "out", "out_np")

    def __init__(
        self, booster: lgb.Booster, predict_type: int, iterations: int, ncol: int, nout: int
    ) -> None:
        handle = ctypes.c_void_p()
        _check(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(predict_type),
                ctypes.c_int(0),
                ctypes.c_int(iterations),
                ctypes.c_int(_C_API_DTYPE_FLOAT64),
                ctypes.c_int32(ncol),
                ctypes.c_char_p(b""),
                ctypes.byref(handle),
            )
        )
        self.free = weakref.finalize(self, _free, int(handle.value or 0), booster)
        self.free.atexit = False  # at exit the library may already be gone; the OS frees it
        inp = (ctypes.c_double * ncol)()
        out = (ctypes.c_double * nout)()
        out_len = ctypes.c_int64(0)
        self.inp = np.ctypeslib.as_array(inp)
        self.out = out
        self.out_np = np.ctypeslib.as_array(out)
        # The arguments of every call, built once: handle, row, &out_len, out.
        self.args = (handle, inp, ctypes.byref(out_len), out)


class FastPredictor:
    """Score one row at a time with a LightGBM booster through the fast C API.

    Parameters
    ----------
    booster
        A trained :class:`lightgbm.Booster`. It must not be trained further
        while this predictor is in use.
    kind
        ``"normal"`` (probabilities for classification, values for
        regression), ``"raw"`` (raw margins), ``"leaf"`` (the leaf index in
        every tree used, as floats) or ``"contrib"`` (TreeSHAP feature
        contributions, the expected value last; per class for multiclass
        models).
    per_thread
        One FastConfig per thread (default) or one shared behind a lock.

    Attributes
    ----------
    n_features : int
        Length of the rows to score.
    n_outputs : int
        Length of :meth:`predict`'s result.
    num_iteration : int
        Iterations used (``-1``: all), as :func:`num_iteration` chose them.

    Examples
    --------
    >>> import lightgbm as lgb
    >>> X = np.random.default_rng(0).normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
    >>> booster = lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(X, y), 5)
    >>> fast = FastPredictor(booster)
    >>> fast.predict_value(X[0]) == float(booster.predict(X[:1])[0])
    True
    """

    def __init__(self, booster: lgb.Booster, kind: Kind = "normal", *, per_thread: bool = True):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        self.booster = booster
        self.kind = kind
        self.per_thread = per_thread
        self.num_iteration = num_iteration(booster)
        self.n_features = int(booster.num_feature())
        per_row = int(booster.num_model_per_iteration())
        if kind == "contrib":
            self.n_outputs = per_row * (self.n_features + 1)
        elif kind == "leaf":
            iterations = int(booster.current_iteration())
            if 0 < self.num_iteration < iterations:
                iterations = self.num_iteration
            self.n_outputs = per_row * iterations
        else:
            self.n_outputs = per_row
        self._fn = _LIB.LGBM_BoosterPredictForMatSingleRowFast
        self._local = threading.local()
        self._lock = threading.Lock()
        self._shared: _Slot | None = None

    def _new_slot(self) -> _Slot:
        return _Slot(
            self.booster, KINDS[self.kind], self.num_iteration, self.n_features, self.n_outputs
        )

    def _slot(self) -> _Slot:
        try:
            slot: _Slot = self._local.slot
        except AttributeError:
            slot = self._local.slot = self._new_slot()
        return slot

    def predict_value(self, x: np.ndarray) -> float:
        """The first output for the row ``x`` (float64, length ``n_features``).

        For binary classification that is P(positive) (``kind="normal"``) or
        the margin (``"raw"``); for regression the predicted value.
        """
        if self.per_thread:
            try:
                slot: _Slot = self._local.slot
            except AttributeError:
                slot = self._local.slot = self._new_slot()
            slot.inp[:] = x
            if self._fn(*slot.args):
                _check(-1)
            return float(slot.out[0])
        with self._lock:
            slot = self._shared or self._make_shared()
            slot.inp[:] = x
            if self._fn(*slot.args):
                _check(-1)
            return float(slot.out[0])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """All outputs for the row ``x``, as a new float64 array of ``n_outputs``."""
        if self.per_thread:
            slot = self._slot()
            slot.inp[:] = x
            if self._fn(*slot.args):
                _check(-1)
            return slot.out_np.copy()
        with self._lock:
            slot = self._shared or self._make_shared()
            slot.inp[:] = x
            if self._fn(*slot.args):
                _check(-1)
            return slot.out_np.copy()

    def _make_shared(self) -> _Slot:
        self._shared = self._new_slot()
        return self._shared

    def __reduce__(self) -> tuple[Any, ...]:
        # FastConfig handles and thread-locals do not travel; rebuild from the booster.
        return (_rebuild, (self.booster, self.kind, self.per_thread))

    def __repr__(self) -> str:
        return (
            f"FastPredictor(kind={self.kind!r}, n_features={self.n_features}, "
            f"num_iteration={self.num_iteration}, per_thread={self.per_thread})"
        )


def _rebuild(booster: lgb.Booster, kind: Kind, per_thread: bool) -> FastPredictor:
    return FastPredictor(booster, kind, per_thread=per_thread)
