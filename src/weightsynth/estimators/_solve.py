"""The estimators' calls into the solvers: the general solver behind one function."""

from __future__ import annotations

import warnings

import jax
import numpy as np

from ..control.feedback import feedback_synthesize
from ..control.problem import Problem
from ..core.synthesis import synthesize
from ..errors import AccuracyWarning


def _general_program(phi, theta, index, beta, t1, activation, *, dtype, steps, solver,
                     nodes, max_iter, seed):
    """The program of a general index: the feedback solver (docs/general.md), started from
    the closed-form W* of the paper's index (scaled down where W* costs more than W = 0).
    The one place the estimators call the general solver. ``steps`` and ``solver`` set
    W*'s solve; ``seed`` is unused (the solver is deterministic)."""
    del seed
    with warnings.catch_warnings():  # W* is only the start: its grid accuracy is moot
        warnings.simplefilter("ignore", AccuracyWarning)
        start = synthesize(phi, theta, beta=beta, t1=t1, activation=activation, steps=steps,
                           solver=solver, dtype=dtype)
    problem = Problem(phi, theta, index, beta=beta, t1=t1, activation=activation,
                      dtype=dtype)
    res = feedback_synthesize(problem, W0=start, nodes=nodes, max_iter=max_iter)
    return res.program, {"converged": bool(res.converged), "reason": res.reason,
                         "iterations": int(res.iterations)}


def _work_dtype():
    return np.float64 if jax.config.jax_enable_x64 else np.float32
