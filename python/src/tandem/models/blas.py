"""One BLAS thread per process, set before numpy starts its thread pool.

numpy's BLAS (OpenBLAS in the wheels) starts one thread per core by default. In a server with
one worker process per core, or beside other CPU-bound processes, those threads oversubscribe
the cores: the naive grpc benchmark server served 71 requests/s with the MLP model that way,
against 1,850 with one thread (``bench/results/grpc.md``).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

__all__ = ["BLAS_THREAD_VARS", "limit_blas_threads"]

log = logging.getLogger("tandem.serve")

#: The thread-count variables of the BLAS / OpenMP libraries numpy may be built with.
BLAS_THREAD_VARS = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def limit_blas_threads() -> None:
    """One BLAS thread per process, so one worker is one core and more workers scale.

    Sets each of :data:`BLAS_THREAD_VARS` that the environment does not set already (a value
    you export wins, e.g. ``OPENBLAS_NUM_THREADS=2`` for two per worker). The libraries read
    them when numpy is first imported; ``python -m tandem serve`` calls this before it imports
    the served module, and each worker again before it loads models. If numpy was imported
    earlier (``tandem.serve.run`` called from a module that imported it), threadpoolctl
    applies the limit when it is installed, and a warning says so otherwise.
    """
    for var in BLAS_THREAD_VARS:
        os.environ.setdefault(var, "1")
    if "numpy" not in sys.modules:
        return
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        log.warning(
            "numpy was imported before tandem serve set OPENBLAS_NUM_THREADS=1: each worker "
            "may run several BLAS threads; import numpy inside Model.load, set the variable "
            "before Python starts, or pip install threadpoolctl"
        )
        return
    try:
        limit = max(1, int(os.environ["OPENBLAS_NUM_THREADS"]))
    except ValueError:
        limit = 1
    threadpoolctl.threadpool_limits(limits=limit)
