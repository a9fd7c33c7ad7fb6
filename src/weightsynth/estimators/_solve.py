"""The estimators' calls into the solvers: the general solver behind one function."""

from __future__ import annotations

import jax
import numpy as np

from ..control.feedback import feedback_synthesize
from ..control.problem import Problem


def _general_program(phi, theta, index, beta, t1, activation, *, dtype, nodes, max_iter,
                     tol):
    """The program of a general index: the feedback solver (docs/general.md), started from
    the closed-form W* of the paper's index (C = beta Theta, exact on the solver's grid;
    scaled down where W* costs more than W = 0), to a stationarity residual ``tol`` times
    its value at the start. The one place the estimators call the general solver."""
    problem = Problem(phi, theta, index, beta=beta, t1=t1, activation=activation,
                      dtype=dtype)
    res = feedback_synthesize(problem, W0="closed_form", nodes=nodes, max_iter=max_iter,
                              rtol=tol)
    return res.program, {"converged": bool(res.converged), "reason": res.reason,
                         "iterations": int(res.iterations)}


def _work_dtype():
    return np.float64 if jax.config.jax_enable_x64 else np.float32
