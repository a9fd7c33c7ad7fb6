r"""Feedback solver for the general problem: W(t) = C(t)^T g(Z(t)), C optimized by L-BFGS.

For the network f = -z + W g(z) + d(t) and an index whose running cost does not depend on W,
every stationary program is W = -beta Lambda^T G (eq. 20), so the solver searches the
programs W = C^T G with C (L x n) piecewise linear on T nodes (eq. 21); for the driven
network f = -z + W x_r(t) + d(t) the same holds with G replaced by the signal X(t). Each
evaluation of S costs O(n L^2) and never forms W.

J(C) is the discretized index (feedback_kernel); its exact gradient comes from reverse-mode
autodiff through the fixed-step solve. L-BFGS (feedback_loop) minimizes it in the variables
P_k = sqrt(w_k) R_k C_k, R_k^T R_k = K(t_k) (eq. 22), the L2 metric of W, refreshed along
the current trajectory every ``refresh`` iterations. The iterations run inside one compiled
chunk of ``chunk`` L-BFGS steps; only the history crosses to Python between chunks.
"""

from __future__ import annotations

import time
from dataclasses import replace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._validation import check_int
from ..core.ode import SolverConfig, uniform_grid
from ..core.optimal_program import WeightProgram
from ..core.program import Program
from . import feedback_kernel as fk
from . import feedback_subspace as fs
from .feedback_loop import FTOL_WINDOW, RIDGE, RIDGE_MIN, Options, minimize, pair_dtype
from .feedback_program import FeedbackProgram
from .grid_program import GridProgram, resample_nodes
from .indices import (
    _correlation_terminal,
    _minus_z_theta,
    _paper_running,
    _squared_error_terminal,
)
from .problem import DrivenDynamics, NetworkDynamics, Problem
from .solvers import GeneralResult, _check_common

_KINDS = {_correlation_terminal: "correlation", _squared_error_terminal: "squared_error"}


def _index_kind(problem: Problem) -> str:
    idx = problem.index
    term, run = getattr(idx.terminal, "func", None), getattr(idx.running, "func", None)
    if term is _minus_z_theta and run is _paper_running:
        return "paper"
    if term in _KINDS and idx.name in ("correlation", "squared_error"):
        return _KINDS[term]
    return "custom"


def _check_feedback_form(problem: Problem, kind: str) -> str:
    """The dynamics kind; refuses problems outside the feedback form (eq. 20)."""
    dyn = problem.dynamics
    if isinstance(dyn, NetworkDynamics):
        basis = "network"
    elif isinstance(dyn, DrivenDynamics):
        basis = "driven"
    else:
        raise ValueError("feedback_synthesize needs dynamics='network' or 'driven' (f affine "
                         "in W); use direct_synthesize or sweep_synthesize for custom dynamics")
    if kind == "custom":  # l must not depend on W: probe dl/dW at a random W
        Z0, Th = jnp.asarray(problem.Z0), jnp.asarray(problem.Theta)
        W = jnp.asarray(np.random.default_rng(0).standard_normal((problem.n,) * 2),
                        problem.dtype)
        dW = jax.grad(lambda W: problem.index.running(Z0, W, problem.t0, Th))(W)
        if not bool(jnp.all(dW == 0)):
            raise ValueError("feedback_synthesize needs a running cost l that does not depend "
                             "on W (then W = -beta Lambda^T g(Z)); use direct_synthesize")
    return basis


#: the parametrizations of W(t) (``coordinates``); "auto" picks one (:func:`choose_coordinates`)
COORDINATES = ("auto", "factor", "weights")

#: "auto" keeps the factor form once n exceeds this many times L: a weight-coordinate pass
#: costs about n / (2 L) factor passes, and weight coordinates took 2.4-2.7x fewer
#: iterations (docs/general.md, "Weight coordinates": faster at n / L = 4, slower at 8)
AUTO_MAX_N_PER_L = 4


def choose_coordinates(problem: Problem, coordinates: str = "auto", W0=None, nodes: int = 26,
                       substeps: int = 1, solver: str = "rk4", history_length: int = 5,
                       memory_limit: int | None = None) -> str:
    """The parametrization ``feedback_synthesize`` uses: ``coordinates`` itself unless it is
    ``"auto"``, which picks

    * ``"factor"`` for the paper's index: W* lies in the factor family exactly (C = beta
      Theta on any grid), where piecewise-linear weights sit O(h^4) above J*;
    * ``"factor"`` for an array ``W0`` (arrays are coefficients C unless ``coordinates=
      "weights"`` is asked for), ``"weights"`` for a program that only weights can start
      from (a GridProgram or any other program but a WeightProgram or FeedbackProgram);
    * ``"factor"`` when n > ``AUTO_MAX_N_PER_L`` x L, or when the weights would not fit in
      ``memory_limit`` and the factor form would;
    * ``"weights"`` otherwise.
    """
    if coordinates not in COORDINATES:
        raise ValueError(f"coordinates must be one of {COORDINATES}, got {coordinates!r}")
    if coordinates != "auto":
        return coordinates
    if isinstance(W0, Program) and not isinstance(W0, (WeightProgram, FeedbackProgram)):
        return "weights"
    if _index_kind(problem) == "paper" or (W0 is not None and not isinstance(W0, (str, Program))):
        return "factor"
    if problem.n > AUTO_MAX_N_PER_L * problem.L:
        return "factor"
    need = estimate_memory(problem, nodes, substeps, solver, history_length, "weights")
    if need > _memory_limit(memory_limit) and need > estimate_memory(
            problem, nodes, substeps, solver, history_length, "factor"):
        return "factor"
    return "weights"


def _spec_data(problem: Problem, nodes: int, substeps: int, solver: str,
               coords: str = "factor"):
    check_int(nodes, "nodes", minimum=2)
    check_int(substeps, "substeps")
    if solver not in fk.TABLEAUS:
        raise ValueError(f"unknown solver {solver!r}; known: {', '.join(fk.TABLEAUS)}")
    if coords not in COORDINATES[1:]:
        raise ValueError(f"coordinates must be one of {COORDINATES}, got {coords!r}")
    kind = _index_kind(problem)
    basis = _check_feedback_form(problem, kind)
    dt = problem.dtype
    spec = fk.Spec(problem.activation, kind, basis, int(nodes), int(substeps), solver, coords)
    Theta = jnp.asarray(problem.Theta)
    TT = Theta @ Theta.T if kind == "paper" else jnp.zeros((), dt)
    dyn = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dt) if isinstance(x, np.ndarray)
                                 else x, problem.dynamics)
    data = fk.Data(jnp.asarray(problem.Z0), Theta, TT, jnp.asarray(problem.beta, dt),
                   jnp.asarray(problem.t0, dt), jnp.asarray(problem.t1, dt), dyn,
                   problem.index if kind == "custom" else None)
    return spec, data


def estimate_memory(problem: Problem, nodes: int = 26, substeps: int = 1,
                    solver: str = "rk4", history_length: int = 5,
                    coordinates: str = "auto") -> int:
    """Bytes the feedback solver needs, about: the stored stages of every step for the
    reverse pass, the L-BFGS history and the metric factors (``"auto"``: in the
    coordinates :func:`choose_coordinates` picks without a W0)."""
    if coordinates == "auto":
        coordinates = choose_coordinates(problem, "auto", None, nodes, substeps, solver,
                                         history_length)
    L, n, T = problem.L, problem.n, nodes
    item = np.dtype(problem.dtype).itemsize
    stages = len(fk.TABLEAUS[solver][0]) if solver in fk.TABLEAUS else 4
    # node states kept by the scan (and its tangent), one interval's stages rematerialized
    per_state = L * n + 2 * L * L
    factor = coordinates == "factor"
    variables = T * (L * n if factor else n * n)  # C, or W itself
    pairs = 2 * history_length * variables * pair_dtype(problem.dtype).itemsize
    return pairs + item * (4 * T * L * n + 3 * substeps * (stages + 2) * per_state
                           + (2 * T * L * L if factor else 0) + 12 * variables)


#: "auto" continuation in weight coordinates: horizons longer than this (in units of the
#: network's time constant) are first solved on ``AUTO_FIRST_HORIZON`` of them
AUTO_LONG_HORIZON, AUTO_FIRST_HORIZON = 3.0, 2.0


def auto_continuation(problem: Problem, coordinates: str) -> list[tuple[float, ...]]:
    """The schedules ``continuation="auto"`` tries, each the fractions of the horizon solved
    before the full one; with more than one, the converged program with the lowest J wins:

    * the paper's index: (1/16, 1/8, 1/4, 1/2); its beta Q term couples the samples so
      strongly that L-BFGS stalls on the full horizon from W = 0;
    * other indices in weight coordinates with t1 - t0 > 3: the full horizon directly
      (about ten iterations), and one stage on [t0, t0 + 2] first. At long horizons the
      full problem has a stationary point next to W = 0, where the outputs have decayed,
      and L-BFGS falls into it from W = 0 and from W* alike; the short problem's optimum
      holds its memories and starts the full one in their basin (memory data, n = 100,
      L = 50, beta 0.01, t1 = 6, squared error: J 4522.33 with bit accuracy 0.99 from
      both starts, against 4988.87 of W = 0's 5000, outputs near 0 with bit accuracy
      0.89, without). Neither finds the lower local minimum every time, hence both
      (docs/general.md, "Long horizons");
    * otherwise the full horizon only.
    """
    if _index_kind(problem) == "paper":
        return [(0.0625, 0.125, 0.25, 0.5)]
    span = float(problem.t1 - problem.t0)
    if coordinates == "weights" and span > AUTO_LONG_HORIZON:
        return [(), (AUTO_FIRST_HORIZON / span,)]
    return [()]


#: "auto" coarse level: about 1/AUTO_COARSEN of the node intervals, but no interval longer
#: than AUTO_COARSE_STEP (in the network's time constant), and only where that at least
#: halves the intervals (weight coordinates)
AUTO_COARSEN, AUTO_COARSE_STEP = 5, 0.25


def coarse_levels(problem: Problem, nodes: int, coordinates: str, coarse="auto") -> list[int]:
    """The node counts solved before the full grid of ``nodes`` (coarsest first).

    ``coarse="auto"`` in weight coordinates gives one level of
    max(ceil((nodes - 1) / 5), ceil((t1 - t0) / 0.25)) intervals when that is at most half
    of the full grid's (26 nodes on [0, 1] -> 6), none otherwise. The coarse optimum lies
    O(h^2) from the fine one in W, so the fine grid starts next to its optimum and needs
    few of its expensive iterations: n = L = 256, beta 0.5, from W = 0, squared error 267
    iterations on 6 nodes and 56 on 26 (39 s) against 271 on 26 (138 s); correlation
    893 + 49 (94 s) against more than 1000. Coarser steps than 0.25 change the problem:
    on [0, 6] with 6 nodes (h = 1.2) the correlation index fell into the decayed minimum
    from W* (docs/general.md, "Coarse grid first"). ``()``: the full grid only.
    """
    if isinstance(coarse, str):
        if coarse != "auto":
            raise ValueError(f"coarse must be 'auto' or a sequence of node counts, got {coarse!r}")
        if coordinates != "weights":
            return []
        span = float(problem.t1 - problem.t0)
        intervals = max(-(-(nodes - 1) // AUTO_COARSEN), int(np.ceil(span / AUTO_COARSE_STEP)))
        return [intervals + 1] if 2 * intervals <= nodes - 1 else []
    levels = list(coarse)
    for T in levels:
        check_int(T, "coarse node count", minimum=2)
    grids = [*levels, nodes]
    if any(b <= a for a, b in zip(grids[:-1], grids[1:], strict=True)):
        raise ValueError(f"coarse node counts must increase and stay below nodes = {nodes}, "
                         f"got {coarse!r}")
    return levels


#: the surrogate stage stops at this fraction of its own residual at its start: it only has
#: to bring the correlation index's search into a good basin (n = L = 64 and 128: the same
#: or nearly the same J as at 1e-6, in 78 and 85 iterations instead of 132 and 221)
SURROGATE_RTOL = 1e-3


def auto_surrogate(problem: Problem, coordinates: str, schedules, W0, surrogate="auto") -> bool:
    """Whether the correlation index is first solved through its saturation-penalized
    surrogate (``surrogate="auto"``): the correlation index, weight coordinates, a single
    horizon (no horizon schedule), and W0 = 0.

    The surrogate is the correlation index plus (1/2) sum_r ||g(z_r(t1))||^2, which is half
    the squared-error index at beta / 2 plus a constant: it pays for saturating outputs, so
    its search does not crawl along the correlation index's saturation plateaus, and its
    optimum starts the correlation index's search in a better basin. Random targets,
    n = L = 256, beta 0.5, t1 = 1, from W = 0: 134 surrogate + 115 + 59 iterations (6 + 26
    nodes) to J -61322.20, against 893 + 49 to -59918.30; a lower J at every size measured,
    n = L = 16 to 256 (docs/general.md, "Saturation surrogate"). A given W0 is kept, unless
    ``scale_start`` replaces it by W = 0 (then "auto" runs the surrogate from there: see
    :func:`feedback_synthesize`); at long horizons the surrogate's own optimum is the
    decayed one, hence one horizon only.
    """
    if isinstance(surrogate, bool):
        if surrogate and _index_kind(problem) != "correlation":
            raise ValueError("surrogate=True applies to the correlation index only, "
                             f"not {_index_kind(problem)!r}")
        return surrogate
    if not (isinstance(surrogate, str) and surrogate == "auto"):
        raise ValueError(f"surrogate must be 'auto', True or False, got {surrogate!r}")
    zero = W0 is None or (isinstance(W0, str) and W0 == "zero")
    return (_index_kind(problem) == "correlation" and coordinates == "weights"
            and all(len(sched) == 0 for sched in schedules) and zero)


def _surrogate(data, spec):
    """The surrogate problem of :func:`auto_surrogate`: the squared-error index at beta / 2."""
    return (eqx.tree_at(lambda d: d.beta, data, data.beta / 2),
            replace(spec, index_kind="squared_error"))


#: the scales of W0 tried by ``scale_start`` when W0 costs more than W = 0
START_SCALES = (0.5, 0.25, 0.125, 0.0625)


def auto_subspace(problem: Problem, coordinates: str, subspace="auto"):
    """(Q, min_span): the basis of the targets' span whose subspace model starts L-BFGS's
    two-loop recursion (feedback_subspace), or None, and the stages it applies to (those
    of a horizon longer than min_span).

    ``subspace="auto"``: weight coordinates, the correlation or squared-error index, targets
    of rank at most ``feedback_subspace.MAX_RANK``, and stages longer than
    AUTO_LONG_HORIZON. There the Hessian's largest curvatures lie on W changing by a
    constant within the targets' span, and the model takes them out of L-BFGS's hands:
    memory data, n = 100, L = 50, beta 0.01, t1 = 6, data seed 1, the last stage from
    277-563 to 101-176 iterations, 1.4-2.8x faster in all, and the correlation index into
    lower minima (-354.68 against -5.52 from W = 0, -537.40 against -301.32 from W*; on
    seed 0 -430.02 against -61.61, but in twice the time; docs/general.md, "Targets
    subspace"). At t1 = 1 the spectrum is tight (kappa about 20) and the model's cost is
    not repaid. ``True``: every stage, where it applies (else a ``ValueError``);
    ``False``: never.
    """
    if isinstance(subspace, str):
        if subspace != "auto":
            raise ValueError(f"subspace must be 'auto', True or False, got {subspace!r}")
    elif not isinstance(subspace, bool):
        raise ValueError(f"subspace must be 'auto', True or False, got {subspace!r}")
    if subspace is False:
        return None, 0.0
    kind = _index_kind(problem)
    applies = coordinates == "weights" and kind in ("correlation", "squared_error")
    Q = fs.targets_basis(problem.Theta, None) if applies else None
    rank = 0 if Q is None else Q.shape[1]
    fits = 0 < rank <= fs.MAX_RANK
    if subspace is True:
        if not applies:
            raise ValueError("subspace=True needs weight coordinates and the correlation or "
                             f"squared-error index, not {coordinates!r} and {kind!r}")
        if not fits:
            raise ValueError(f"subspace=True needs targets of rank 1 to {fs.MAX_RANK} (the "
                             f"model costs rank^2 tangent passes), got rank {rank}")
        return Q, 0.0
    if not fits or problem.t1 - problem.t0 <= AUTO_LONG_HORIZON:
        return None, 0.0
    return Q, AUTO_LONG_HORIZON


def auto_mixed(problem: Problem, coordinates: str, mixed="auto") -> bool:
    """Whether the whole schedule first runs in float32 and the full problem is then
    polished in float64 from its result (``mixed_precision``).

    ``"auto"``: a float64 problem in weight coordinates, the correlation or squared-error
    index, and a horizon longer than AUTO_LONG_HORIZON, where the iterations are many. A
    float32 pass costs half of a float64 one at n = 100, L = 50 (7.7 against 15 ms), and
    float32 J is good to about 1e-6 relative, so the float32 search does the long descent
    and float64 only the last digits: memory data, n = 100, L = 50, beta 0.01, t1 = 6,
    data seed 1, both indices from W = 0 and W*, the same J (to 5e-12 relative) in
    0.50-0.69 of the time; on data seeds 2-5 faster in all 16 cases, squared error to the
    same J, the correlation index, whose local minima are many there, to another one in 5
    of 8, lower in 4 (docs/general.md, "Mixed precision"). ``True``: wherever the
    problem is float64; ``False``: never. The result is converged by the float64 test
    alone (the threshold of the float64 problem at the start).
    """
    if not (isinstance(mixed, bool) or (isinstance(mixed, str) and mixed == "auto")):
        raise ValueError(f"mixed_precision must be 'auto', True or False, got {mixed!r}")
    double = np.dtype(problem.dtype) == np.float64
    if mixed is True:
        if not double:
            raise ValueError("mixed_precision=True needs a float64 problem (float32 is "
                             f"already the low precision), got {np.dtype(problem.dtype)}")
        return True
    if mixed is False:
        return False
    return (double and coordinates == "weights"
            and _index_kind(problem) in ("correlation", "squared_error")
            and problem.t1 - problem.t0 > AUTO_LONG_HORIZON)


#: the float32 stages of mixed precision stop once J changes by at most this relative
#: amount in a single step (float32's resolution, so a window of one), or after this many
#: rejected trials in a row: below that the float64 polish does the work
SINGLE_FTOL, SINGLE_MAX_REJECTIONS = float(np.finfo(np.float32).eps), 10


def _scaled_start(C0, data, spec):
    """(C, s): C0 itself (s = 1) unless it costs more than W = 0; then the cheapest of
    s C0 for s in START_SCALES and 0, by J of ``data`` (the first horizon solved) on the
    full grid. So the search never starts above doing nothing. W* of the paper's index is
    far too large for other indices at the same beta: n = 512, L = 32, correlation, beta
    0.01, J(W*) = 1.8e5 against -7.3e3 at W* / 4, and L-BFGS took 177 iterations from W*
    against 79 from W* / 4, to the same J (docs/general.md, "Scaled start")."""
    def J(C):
        return float(fk.node_states(C, data, spec)[1])

    J0 = J(C0)
    if not np.isfinite(J0) or not bool(jnp.any(C0 != 0)):
        return C0, 1.0
    best = (J(jnp.zeros_like(C0)), 0.0)
    if J0 <= best[0]:
        return C0, 1.0
    for s in START_SCALES:
        Js = J(s * C0)
        if np.isfinite(Js) and Js < best[0]:
            best = (Js, s)
    return best[1] * C0, best[1]


def _memory_limit(limit) -> int:
    """``memory_limit`` in bytes; None: 80% of the memory available now."""
    if limit is None:
        import psutil

        limit = int(0.8 * psutil.virtual_memory().available)
    return limit


def _check_memory(need: int, limit) -> None:
    limit = _memory_limit(limit)
    if need > limit:
        raise ValueError(f"the problem needs about {need / 2**30:.2f} GiB, more than the "
                         f"{limit / 2**30:.2f} GiB allowed (memory_limit); use fewer nodes or "
                         "substeps, a smaller L, or float32")


def _initial_coef(problem: Problem, W0, spec) -> np.ndarray:
    """C0 (T, L, n) from W0: None/'zero' (W = 0), 'closed_form' (C = beta Theta, the paper's
    W*, eq. 7), a WeightProgram of the same data (likewise), a FeedbackProgram (its C
    resampled), or an (L, n) / (T, L, n) array of coefficients."""
    T, L, n, dt = spec.T, problem.L, problem.n, problem.dtype
    if W0 is None or (isinstance(W0, str) and W0 == "zero"):
        return np.zeros((T, L, n), dt)
    if isinstance(W0, str) and W0 == "closed_form":
        W0 = problem.beta * np.asarray(problem.Theta)
    elif isinstance(W0, WeightProgram):
        if W0.Theta.shape != (L, n):
            raise ValueError(f"W0 holds L x n = {W0.Theta.shape}, the problem {(L, n)}")
        W0 = W0.beta * np.asarray(W0.Theta)
    elif isinstance(W0, FeedbackProgram):
        if W0.C.shape[1:] != (L, n):
            raise ValueError(f"W0 holds L x n = {W0.C.shape[1:]}, the problem {(L, n)}")
        ts = uniform_grid(problem.t0, problem.t1, T - 1)
        W0 = np.asarray(jax.vmap(W0._coef)(jnp.asarray(ts, dt)))
    elif isinstance(W0, Program) or isinstance(W0, str):
        raise ValueError("feedback_synthesize starts from 'zero', 'closed_form', a WeightProgram,"
                         f" a FeedbackProgram or coefficients C, got {W0!r}")
    C = np.asarray(W0, dtype=dt)
    if C.shape == (L, n):
        C = np.broadcast_to(C, (T, L, n)).copy()
    if C.shape != (T, L, n) or not np.isfinite(C).all():
        raise ValueError(f"W0 as coefficients must be a finite ({L}, {n}) or ({T}, {L}, {n}) "
                         f"array, got shape {C.shape}")
    return C


def _initial_weights(problem: Problem, W0, spec, data) -> np.ndarray:
    """C0 = W0(t_k)^T (T, n, n) for weight coordinates: W0 None/'zero', 'closed_form', a
    WeightProgram or FeedbackProgram (their W at the nodes, along their own trajectory, as
    their factor form gives it), any other program (its ``weights``), or an (n, n) /
    (T, n, n) array of weights."""
    T, n, dt = spec.T, problem.n, problem.dtype
    if W0 is None or (isinstance(W0, str) and W0 == "zero"):
        return np.zeros((T, n, n), dt)
    ts = uniform_grid(problem.t0, problem.t1, T - 1)
    if isinstance(W0, (str, WeightProgram, FeedbackProgram)):
        factor = replace(spec, coords="factor")
        C = jnp.asarray(_initial_coef(problem, W0, factor))
        Zs, _ = fk.node_states(C, data, factor)
        Y = jax.vmap(lambda Z, t: fk.basis(Z, t, data, factor))(Zs, jnp.asarray(ts, dt))
        W = np.asarray(jnp.einsum("kln,klm->knm", C, Y))
    elif isinstance(W0, Program):
        W = np.asarray(W0.weights(ts), dtype=dt)
    else:
        W = np.asarray(W0, dtype=dt)
        if W.shape == (n, n):
            W = np.broadcast_to(W, (T, n, n))
    if W.shape != (T, n, n) or not np.isfinite(W).all():
        raise ValueError(f"W0 in weight coordinates must give finite ({n}, {n}) weights at "
                         f"the {T} nodes, got shape {W.shape}")
    return np.ascontiguousarray(np.swapaxes(W, 1, 2))


def feedback_synthesize(problem: Problem, *, W0=None, nodes: int = 26, substeps: int = 1,
                        coordinates: str = "auto",
                        solver: str = "rk4", max_iter: int = 1000, rtol: float = 1e-6,
                        gtol: float = 0.0, ftol: float = 1e-12, history_length: int = 5,
                        precondition: bool = True, refresh: int = 50, chunk: int = 10,
                        max_rejections: int = 60, ridge: float = RIDGE,
                        ridge_min: float = RIDGE_MIN, continuation="auto", coarse="auto",
                        scale_start: bool = True, surrogate="auto", subspace="auto",
                        mixed_precision="auto", memory_limit: int | None = None,
                        progress: bool = False) -> GeneralResult:
    r"""Feedback solver: W = C^T g(Z) (eqs. 20-22), C on ``nodes`` nodes, L-BFGS on the
    exact discrete gradient in the L2 metric of W.

    Converged when the gradient norm (the stationarity residual, in the metric of eq. 22)
    falls to ``max(gtol, rtol * residual at W0)``, or J changes by at most ``ftol`` |J|
    over the last five accepted steps (one in float32; ``feedback_loop.FTOL_WINDOW``).
    The J test decides where the residual's threshold lies below what round-off in J lets
    a line search reach, as from W = 0 at long horizons: there 1e-12 left J within 3e-12
    of its limit (docs/general.md, "Stopping"). ``ftol=0`` leaves the residual as the only
    test but for J not moving at all over the window (else the J test can also fire where
    the threshold is within reach, on a stretch where J barely moves). ``max_iter``
    accepted steps in all without either: not converged.
    ``W0``: see :func:`_initial_coef` ('zero', 'closed_form', a program, or coefficients).
    ``continuation``: fractions of the horizon solved first, each warm-starting the next
    with the same node values (C as a function of (t - t0)/(t1 - t0)); every stage stops at
    the full problem's ``rtol`` threshold. ``()``: the full horizon only. ``"auto"``
    (default): see :func:`auto_continuation`.
    ``coarse``: node counts solved first, coarsest first, each level (the whole horizon
    schedule on the coarsest) warm-starting the next by linear interpolation of the node
    values, every level stopping at the full problem's threshold; ``()``: the full grid
    only; ``"auto"`` (default): see :func:`coarse_levels`. History rows name their
    ``nodes``.
    ``scale_start``: when W0 costs more than W = 0 on the first horizon solved, start from
    the best of s W0, s = 1/2, 1/4, 1/8, 1/16, and W = 0 instead (:func:`_scaled_start`;
    the s of the kept run is ``settings["start_scale"]``).
    ``surrogate``: solve the correlation index's saturation-penalized surrogate (half the
    squared-error index at beta / 2) first, on the coarsest grid, and the correlation
    index from its optimum (:func:`auto_surrogate`; ``"auto"``, the default: from W = 0,
    given or chosen by ``scale_start``, on a single horizon in weight coordinates).
    History rows of that stage have ``surrogate`` True and the surrogate's J;
    ``settings["surrogate"]`` says whether the kept run went through it.
    ``subspace``: in weight coordinates, start each L-BFGS direction from a Gauss-Newton
    model of the Hessian on {W + Q A Q^T}, Q the targets' span, W changing by a constant
    in time (feedback_subspace), rebuilt every 40 steps; ``"auto"`` (default): on stages
    longer than 3 time constants when the targets' rank is at most 12 (see
    :func:`auto_subspace`); the rank used is ``settings["subspace"]``.
    ``mixed_precision``: run the schedule above in float32, then the full problem in float64
    from the float32 program with the lowest J, stopping at the float64 problem's own
    threshold (:func:`auto_mixed`; ``"auto"``, the default: float64 problems in weight
    coordinates at long horizons; a W0 whose J overflows float32 runs in the problem's
    precision throughout). History rows say their ``precision``;
    ``settings["mixed_precision"]`` whether it was used.
    ``refresh``: iterations between updates of the metric (and L-BFGS restarts).
    ``ridge``, ``ridge_min``: the metric is R_k^T R_k = K(t_k) + ridge x (mean eigenvalue
    of K(t_k)) I; once J has settled, each refresh divides the ridge by 10, down to
    ``ridge_min`` (``ridge_min = ridge``: a fixed ridge). A large ridge keeps samples that
    share an attractor (K nearly singular) from distorting the metric; a small one removes
    the ridge's own slow directions near the optimum (docs/general.md, "Optimizer"). The
    metric changes the path, not the optimum.
    ``coordinates``: ``"factor"`` searches W = C^T g(Z) (L x n per node: O(n L) numbers
    and O(n L^2) per evaluation, the family every stationary program lies in; the result
    is a FeedbackProgram); ``"weights"`` searches W(t) itself, n x n per node, piecewise
    linear (O(n^2 L) per evaluation), with the plain L2 metric of W (``precondition``,
    ``ridge`` and ``ridge_min`` do not apply; W0 arrays are (n, n) or (T, n, n) weights;
    the result is a GridProgram). The factor form's metric is frozen between refreshes
    while W depends on C through Z as well, and inherits K's conditioning: weight
    coordinates took 2.4-2.7x fewer iterations on memory data at n = 100, L = 25-100
    (same J), and 3-5x fewer at n = L = 32-256 on random targets (docs/general.md).
    ``"auto"`` (default) picks one by :func:`choose_coordinates`: weights unless the index
    is the paper's, n > 4 L, W0 is an array of coefficients, or memory forbids; the
    choice is in ``settings["coordinates"]``.
    ``memory_limit``: bytes (default 80% of the available memory); a larger estimate
    (:func:`estimate_memory`) is refused up front with a ``ValueError``.
    """
    _check_common(problem, max_iter, ftol, gtol)
    if not (isinstance(rtol, (int, float)) and 0 <= rtol < 1):
        raise ValueError(f"rtol must be in [0, 1), got {rtol!r}")
    for name, val in (("ridge", ridge), ("ridge_min", ridge_min)):
        if not (isinstance(val, (int, float)) and 0 < val < np.inf):
            raise ValueError(f"{name} must be a finite number > 0, got {val!r}")
    coordinates = choose_coordinates(problem, coordinates, W0, nodes, substeps, solver,
                                     history_length, memory_limit)
    if isinstance(continuation, str) and continuation == "auto":
        schedules = auto_continuation(problem, coordinates)
    else:
        schedules = [continuation]
    schedules = [[float(f) for f in sched] for sched in schedules]
    if any(not 0 < f < 1 for sched in schedules for f in sched):
        raise ValueError(f"continuation fractions must lie in (0, 1), got {continuation!r}")
    spec, data = _spec_data(problem, nodes, substeps, solver, coordinates)
    levels = [*coarse_levels(problem, nodes, coordinates, coarse), nodes]
    from_zero = surrogate == "auto" and auto_surrogate(problem, coordinates, schedules, None)
    surrogate = auto_surrogate(problem, coordinates, schedules, W0, surrogate)
    _check_memory(estimate_memory(problem, nodes, substeps, solver, history_length,
                                  coordinates), memory_limit)
    weights = coordinates == "weights"
    start = _initial_weights(problem, W0, spec, data) if weights else \
        _initial_coef(problem, W0, spec)
    C0 = jnp.asarray(start)
    # the J test over FTOL_WINDOW steps in float64; in float32 a step changes J by zero or
    # by at least float32's resolution, so one step decides there, as it always has
    window = FTOL_WINDOW if np.dtype(problem.dtype) == np.float64 else 1
    opt = Options(max_iter, rtol, gtol, ftol, history_length, precondition and not weights,
                  refresh, chunk, max_rejections, window, float(ridge), float(ridge_min))
    Q, min_span = auto_subspace(problem, coordinates, subspace)
    if Q is not None:
        opt = replace(opt, subspace=jnp.asarray(Q, problem.dtype), subspace_min_span=min_span)
    # mixed precision: the schedule in float32 (its own stops), then the float64 polish
    mixed = auto_mixed(problem, coordinates, mixed_precision)
    C_s, data_s, opt_s = C0, data, opt
    if mixed:
        C_s, data_s = fk.single(C0), fk.single(data)
        if np.isfinite(float(fk.node_states(C_s, data_s, spec)[1])):
            opt_s = replace(opt, ftol=max(opt.ftol, SINGLE_FTOL), ftol_window=1,
                            max_rejections=min(opt.max_rejections, SINGLE_MAX_REJECTIONS),
                            subspace=None if opt.subspace is None else fk.single(opt.subspace))
        else:  # W0 overflows float32: the whole search in the problem's precision
            mixed, C_s, data_s = False, C0, data
    bar = _bar(progress, max_iter)
    t_start = time.perf_counter()
    runs, it = [], 0
    for k, sched in enumerate(schedules):
        out = _solve_levels(C_s, sched, levels, scale_start, problem, data_s, spec, opt_s, it,
                            t_start, bar, surrogate, from_zero)
        it = out[-1]
        runs.append(out)
        for row in out[1]:
            row["run"], row["precision"] = k, str(data_s.Z0.dtype)
    # converged first, then the lower J; float32 searches end at round-off, where a line
    # search that fails counts as done: the lower J alone
    best = min(range(len(runs)), key=lambda k: (not (mixed or runs[k][2]), runs[k][4]))
    if mixed:
        runs[best] = _polish(runs[best], C0, problem, data, spec, opt, t_start, bar)
        it = runs[best][-1]
        for row in runs[best][1]:
            row.setdefault("run", best)
            row.setdefault("precision", str(data.Z0.dtype))
    if bar is not None:
        bar.close()
    C, _, converged, reason, _, start_scale, _ = runs[best]
    rows = [row for out in runs for row in out[1]]
    for k, out in enumerate(runs):
        if k != best:
            reason = (f"{reason} ({_schedule_name(schedules[best])}); "
                      f"{_schedule_name(schedules[k])} gave J = {out[4]:.10g}"
                      f"{' in float32' if mixed else ''}{'' if out[2] else ', not converged'}")
    history = pd.DataFrame(rows, columns=["iteration", "J", "residual", "t1", "nodes",
                                          "surrogate", "precision", "evals", "seconds",
                                          "run"])
    chosen = history[(history["run"] == best) & ~history["surrogate"].astype(bool)]
    J, res = float(chosen["J"].iloc[-1]), float(chosen["residual"].iloc[-1])
    settings = dict(method="feedback", coordinates=coordinates, nodes=nodes,
                    substeps=substeps, solver=solver,
                    max_iter=max_iter, rtol=rtol, gtol=gtol, ftol=ftol,
                    continuation=schedules[best], coarse=levels[:-1],
                    start_scale=start_scale,
                    surrogate=bool(history[history["run"] == best]["surrogate"].any()),
                    subspace=None if Q is None else dict(rank=int(Q.shape[1]),
                                                         min_span=min_span),
                    mixed_precision=mixed,
                    history_length=history_length, precondition=precondition, refresh=refresh,
                    ridge=ridge, ridge_min=ridge_min)
    stats = {"method": "feedback", "iterations": it, "converged": converged, "reason": reason,
             "J": J, "residual": res}
    prog = _program(problem, C, data, spec, stats)
    return GeneralResult(prog, history, converged, reason, it, J, res, settings)


def _schedule_name(fracs) -> str:
    return f"continuation {fracs}" if fracs else "the full horizon directly"


def _threshold(C, data, spec, opt: Options) -> float:
    """The full problem's stopping residual from the start C: max(gtol, rtol x the
    residual there), which every stage of a run (and mixed precision's polish) stops at."""
    res0 = minimize(C, data, spec, replace(opt, max_iter=0))[-1]
    return max(opt.gtol, opt.rtol * res0)


def _polish(run, C0, problem: Problem, data, spec, opt: Options, t_start: float, bar):
    """Mixed precision's last stage: L-BFGS in the problem's precision on the full horizon
    and grid from the float32 ``run`` of :func:`_solve_levels`, stopping at the threshold
    of the full problem at the (scaled) start, as that function's stages do. Returns the
    run with the polished C, its rows added, and its convergence."""
    C32, rows, _, reason32, J32, scale, it = run
    dt = data.Z0.dtype
    C, part, converged, reason, it, _ = minimize(
        jnp.asarray(C32, dt), data, spec, _stage_options(opt, problem.t1 - problem.t0), it,
        t_start, bar, _threshold(jnp.asarray(scale * C0, dt), data, spec, opt))
    rows = rows + [dict(row, nodes=spec.T, surrogate=False) for row in part]
    reason = f"{reason} (in {dt}, from the float32 search, which ended: {reason32})"
    J = float(fk.node_states(C, data, spec)[1])
    return C, rows, converged, reason, J, scale, it


def _solve_levels(C0, fracs, levels, scale_start: bool, problem: Problem, data, spec,
                  opt: Options, it: int, t_start: float, bar, surrogate: bool = False,
                  from_zero: bool = False):
    """The horizon schedule ``fracs`` on the coarsest grid of ``levels``, then the full
    horizon on each finer grid from the interpolated coarser program. With
    ``scale_start``, C0 is first scaled by :func:`_scaled_start` on the first horizon
    solved; with ``surrogate``, the coarsest grid first solves the surrogate problem
    (:func:`auto_surrogate`) from there, as it does with ``from_zero`` when the scaled
    start is W = 0. Every stage of the index itself stops at the full
    problem's threshold (rtol x its residual at the start). Returns (C, history rows,
    converged, reason, J on the full grid and horizon, the start's scale, iterations so
    far); rows of the surrogate stage have ``surrogate`` True."""
    scale = 1.0
    if scale_start:
        first = eqx.tree_at(lambda d: d.t1, data, jnp.asarray(
            problem.t0 + (fracs[0] if fracs else 1.0) * (problem.t1 - problem.t0),
            data.t1.dtype))
        C0, scale = _scaled_start(C0, first, spec)
    surrogate = surrogate or (from_zero and scale == 0.0)
    stop = None
    if fracs or len(levels) > 1 or surrogate:  # the threshold of the full problem at W0
        stop = _threshold(C0, data, spec, opt)
    rows, C = [], C0
    for k, T in enumerate(levels):
        level = replace(spec, T=T)
        C = resample_nodes(C, T)
        if k and not np.isfinite(float(fk.node_states(C, data, level)[1])):
            C = resample_nodes(C0, T)  # the coarser program blows up on this grid: restart at W0
        if k == 0 and surrogate:
            C, part, _, _, it, _ = minimize(
                C, *_surrogate(data, level), _stage_options(
                    replace(opt, rtol=SURROGATE_RTOL), problem.t1 - problem.t0), it, t_start,
                bar)
            rows += [dict(row, nodes=T, surrogate=True) for row in part]
        C, part, converged, reason, J, it = _solve_stages(
            C, fracs if k == 0 else (), problem, data, level, opt, it, t_start, bar, stop)
        rows += [dict(row, nodes=T, surrogate=False) for row in part]
    return C, rows, converged, reason, J, scale, it


def _stage_options(opt: Options, span: float) -> Options:
    """``opt`` for a stage of horizon ``span``: without the subspace model at or below its
    ``subspace_min_span``."""
    return opt if span > opt.subspace_min_span else replace(opt, subspace=None)


def _solve_stages(C0, fracs, problem: Problem, data, spec, opt: Options, it: int,
                  t_start: float, bar, stop=None):
    """L-BFGS on each horizon fraction of ``fracs`` in turn, then on the full horizon, from
    C0, each stopping at a residual of ``stop`` (None: rtol x its own at its start):
    (C, history rows, converged, reason, J of C on the full horizon, iterations so far)."""
    rows, C = [], C0
    for f in [*fracs, 1.0]:
        t1 = problem.t0 + f * (problem.t1 - problem.t0)
        stage = eqx.tree_at(lambda d: d.t1, data, jnp.asarray(t1, data.t1.dtype))
        C, part, converged, reason, it, _ = minimize(
            C, stage, spec, _stage_options(opt, f * (problem.t1 - problem.t0)), it, t_start,
            bar, stop)
        rows += part
        if f < 1.0 and not converged and "cap" not in reason:
            break  # a failed stage: report it (the program is for the full horizon below)
    Zs, J_full = fk.node_states(C, data, spec)
    if not (np.isfinite(float(J_full)) and bool(jnp.all(jnp.isfinite(Zs)))):
        # a short-horizon stage failed and its C blows up on [t0, t1]: W0 is the last good
        C, converged = C0, False
        reason = f"{reason}; on the full horizon that program diverges: W0 returned"
        J_full = fk.node_states(C0, data, spec)[1]
        rows.append(dict(iteration=it, J=float(J_full), residual=np.nan, t1=problem.t1,
                         evals=np.nan, seconds=time.perf_counter() - t_start))
    return C, rows, converged, reason, float(J_full), it


def _program(problem: Problem, C, data, spec, stats) -> Program:
    """The result: a FeedbackProgram (network), or a GridProgram of W_k = C_k^T X(t_k)
    (driven) or of W_k = C_k^T (weight coordinates)."""
    ts = np.asarray(fk.node_times(data, spec))
    offs = np.stack([np.broadcast_to(np.asarray(problem.dynamics.offset(t), problem.dtype),
                                     (problem.n,)) for t in ts])
    cfg = SolverConfig(solver=spec.solver, steps=(spec.T - 1) * spec.substeps)
    common = dict(activation=problem.activation, t0=problem.t0, t1=problem.t1, solver=cfg,
                  stats=stats)
    if spec.coords == "weights":
        return GridProgram(W=np.swapaxes(np.asarray(C), 1, 2), drive=offs, **common)
    if spec.basis == "network":
        Zs, _ = fk.node_states(C, data, spec)
        return FeedbackProgram(Z0=problem.Z0, C=np.asarray(C), Zs=np.asarray(Zs), drive=offs,
                               **common)
    X = np.stack([np.asarray(fk.basis(None, t, data, spec)) for t in ts])
    W = np.einsum("kln,klm->knm", np.asarray(C), X)
    return GridProgram(W=W, drive=offs, **common)


def _bar(progress: bool, total: int):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="feedback")
