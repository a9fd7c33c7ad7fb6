r"""The methods compared in the study, behind one interface.

Each method maps (a training :class:`Task`, queries x (B, n) given as network outputs at t0,
times ts) to a :class:`Recall`. Continuous methods run the network N, dz/dt = -z + W(t) g(z)
(paper eq. 1) with g = tanh and report states at every t in ``ts``; discrete and one-shot
methods report their final state once (``times = [nan]``).

* ``optimal``: the optimal program W*(t) = beta Theta^T g(Z(t)) (eq. 7), synthesized from
  the training pairs (phi_r, theta_r).
* ``outer_continuous``: Hopfield's matrix of the training targets at the same scale beta,
  W_H = beta sum_r theta_r theta_r^T = beta Theta^T Theta, constant, in the same dynamics N.
  This is the matrix that derivation section 5 (eq. 12) places on the optimal trajectory
  (W*(t0) when phi = theta, W*(t1) when outputs reach their targets). Its gain on a stored
  pattern is about beta * L * n / K = beta * n * samples_per_exemplar, 5 at the defaults:
  above 1, so stored patterns are attractors of N (tanh needs gain > 1).
* ``outer_discrete``: the Hebbian matrix (1/n) sum_k xi_k xi_k^T of the exemplars, zero
  diagonal, Hopfield's asynchronous sign dynamics.
* ``projection`` / ``storkey``: those rules on the exemplars, same discrete dynamics.
* ``dense``: modern Hopfield softmax retrieval over the exemplars (one step), then sign.

Discrete methods start from sign(x); all baselines see the exemplars (the distinct targets)
and the optimal program sees the training pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..baselines import retrieval, rules
from ..core.program import ConstantProgram
from ..core.synthesis import synthesize

CONTINUOUS = ("optimal", "outer_continuous")


@dataclass(frozen=True)
class Task:
    """One training set and the settings every method shares."""

    exemplars: np.ndarray   # (K, n) distinct targets, +-1
    inputs: np.ndarray      # (L, n) phi_r, inside tanh's range
    targets: np.ndarray     # (L, n) theta_r
    beta: float
    t1: float
    seed: int = 0           # for the discrete dynamics' update order
    pad_L: int | None = None  # pad the training set to this many rows (see pad_rows)


@dataclass(frozen=True)
class Recall:
    """States ``states`` (T, B, n) at ``times`` (T,), outputs in [-1, 1], and the program."""

    times: np.ndarray
    states: np.ndarray
    outputs: np.ndarray
    program: object = None


def _continuous(prog, queries, ts) -> Recall:
    Z = prog.trajectory(queries, ts)
    return Recall(np.asarray(ts, float), Z, np.tanh(Z), prog)


def pad_rows(x: np.ndarray, rows: int | None) -> np.ndarray:
    """Append zero rows up to ``rows``: shapes then repeat across cells, so compiled solvers
    are reused. A zero pair (phi = 0, theta = 0) is exact padding: it adds nothing to
    W* = beta Theta^T g(Z), and its state stays at z = 0; a zero query is simply dropped."""
    if rows is None or rows <= len(x):
        return x
    return np.concatenate([x, np.zeros((rows - len(x), x.shape[1]), x.dtype)])


def training_pairs(task: Task) -> tuple[np.ndarray, np.ndarray]:
    """The (possibly zero-padded) training inputs and targets used by ``optimal``."""
    return pad_rows(task.inputs, task.pad_L), pad_rows(task.targets, task.pad_L)


def _optimal(task: Task, queries, ts) -> Recall:
    phi, theta = training_pairs(task)
    prog = synthesize(phi, theta, beta=task.beta, t1=task.t1)
    return _continuous(prog, queries, ts)


def hopfield_matrix(task: Task) -> np.ndarray:
    r"""W_H = beta Theta^T Theta, the outer-product matrix at the optimal program's scale."""
    return rules.outer_product_rule(task.targets, scale=task.beta)


def _outer_continuous(task: Task, queries, ts) -> Recall:
    prog = ConstantProgram(hopfield_matrix(task), "tanh", 0.0, task.t1)
    return _continuous(prog, queries, ts)


def _static(S) -> Recall:
    S = np.asarray(S, float)[None]
    return Recall(np.array([np.nan]), S, S)


def _discrete(W, task: Task, queries) -> Recall:
    return _static(retrieval.discrete_recall(W, np.sign(queries), seed=task.seed))


def _outer_discrete(task: Task, queries, ts) -> Recall:
    return _discrete(rules.outer_product_rule(task.exemplars), task, queries)


def _projection(task: Task, queries, ts) -> Recall:
    return _discrete(rules.projection_rule(task.exemplars), task, queries)


def _storkey(task: Task, queries, ts) -> Recall:
    return _discrete(rules.storkey_rule(task.exemplars), task, queries)


def _dense(task: Task, queries, ts) -> Recall:
    out = retrieval.dense_memory_recall(task.exemplars, np.sign(queries))
    return _static(np.where(out >= 0.0, 1.0, -1.0))


METHODS: dict[str, Callable[[Task, np.ndarray, np.ndarray], Recall]] = {
    "optimal": _optimal,
    "outer_continuous": _outer_continuous,
    "outer_discrete": _outer_discrete,
    "projection": _projection,
    "storkey": _storkey,
    "dense": _dense,
}


def run_method(name: str, task: Task, queries, ts, batch: int | None = None) -> Recall:
    """Run method ``name`` (a key of :data:`METHODS`) on ``queries`` at times ``ts``.

    Continuous methods run ``batch`` queries (zero-padded; padding dropped from the result).
    """
    try:
        fn = METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None
    queries = np.asarray(queries, float)
    B = len(queries)
    if name in CONTINUOUS:
        queries = pad_rows(queries, batch)
    rec = fn(task, queries, np.asarray(ts, float))
    return Recall(rec.times, rec.states[:, :B], rec.outputs[:, :B], rec.program)
