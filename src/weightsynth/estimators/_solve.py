"""The estimators' calls into the solvers: the general solver behind one function."""

from __future__ import annotations

import jax
import numpy as np

from ..control.problem import Problem
from ..control.solvers import sweep_synthesize
from ..core.synthesis import synthesize


def _general_program(phi, theta, index, beta, t1, activation, *, dtype, steps, solver,
                     nodes, max_iter, seed):
    """The program of a general index: the general solver, started from the closed-form
    W* of the paper's index. The one place the estimators call the general solver."""
    start = synthesize(phi, theta, beta=beta, t1=t1, activation=activation, steps=steps,
                       solver=solver, dtype=dtype)
    problem = Problem(phi, theta, index, beta=beta, t1=t1, activation=activation,
                      dtype=dtype)
    res = sweep_synthesize(problem, W0=start, nodes=nodes, max_iter=max_iter, seed=seed)
    return res.program, {"converged": bool(res.converged), "reason": res.reason,
                         "iterations": int(res.iterations)}


def _work_dtype():
    return np.float64 if jax.config.jax_enable_x64 else np.float32
