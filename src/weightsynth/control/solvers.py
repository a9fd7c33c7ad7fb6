r"""Solvers for the general problem (derivation eqs. 13-18): sweep and direct method.

Both represent W(t) by its values W_k at T uniform nodes, piecewise linear in between
(:class:`~weightsynth.grid_program.GridProgram`), and integrate S with a fixed-step solver
stepping exactly through the nodes (``substeps`` steps per interval).

* :func:`sweep_synthesize`: forward-backward sweep on Pontryagin's conditions. Forward: S and
  the running cost under W. Backward: the costate, d lambda_r/dt = -dH/dz_r,
  lambda_r(t1) = dphi/dz_r(t1). Update at every node:

      W <- W - a beta dH/dW = (1 - a) W + a W_new,
      W_new = W - beta dH/dW = -beta sum_r (df_r/dW)^T lambda_r   (eq. 7-like closed form),

  the closed form holding when f is affine in W and l does not depend on W (for the paper's
  f, W_new = -beta sum_r lambda_r g(z_r)^T). a starts at min(1, 2 a_prev) and is halved until
  J decreases by the Armijo amount c a beta ||dH/dW||^2, so J never increases.
* :func:`direct_synthesize`: J(W_0..W_{T-1}) differentiated by reverse-mode autodiff through
  the diffrax solve (the discrete adjoint) and minimized by optimistix's L-BFGS in the scaled
  variables p_k = sqrt(w_k) W_k (w_k the trapezoid weights), so that the Euclidean gradient
  approximates the function dH/dW and the iteration does not degrade as T grows.

Stopping: ``residual <= gtol`` where residual = (int ||dH/dW||_F^2 dt)^{1/2} (trapezoid
rule on the nodes), or ``|J_k - J_{k-1}| <= ftol |J_k|``: converged. ``max_iter`` accepted
iterations: not converged, "iteration cap reached". A non-finite J, state or gradient, or a
line search that cannot decrease J: stop, not converged, the last good program returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pandas as pd

from .._validation import check_int
from ..core.ode import SOLVERS, SolverConfig, diffrax_solver, uniform_grid
from ..core.program import Program
from .grid_program import GridProgram, interp_nodes
from .problem import Problem


@dataclass(frozen=True)
class GeneralResult:
    """Outcome of a general solver.

    ``program`` (a :class:`GridProgram`, always finite), ``history`` (one row per accepted
    iterate: ``iteration``, ``J``, ``residual``, ``step``, ``evals``, ``seconds``),
    ``converged``, ``reason`` (why it stopped), ``iterations`` (accepted updates), ``J`` and
    ``residual`` of the returned program.
    """

    program: GridProgram
    history: pd.DataFrame
    converged: bool
    reason: str
    iterations: int
    J: float
    residual: float
    settings: dict = field(default_factory=dict)


# ---- discretization ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Grid:
    nodes: np.ndarray  # (T,)
    steps: np.ndarray  # (S+1,), integration grid, S = (T-1) * substeps
    weights: np.ndarray  # (T,) trapezoid weights
    cfg: SolverConfig


def _make_grid(problem: Problem, nodes: int, substeps: int, solver: str) -> _Grid:
    check_int(nodes, "nodes", minimum=2)
    check_int(substeps, "substeps")
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; known: {', '.join(SOLVERS)}")
    t0, t1, S = problem.t0, problem.t1, (nodes - 1) * substeps
    ts = uniform_grid(t0, t1, nodes - 1)
    grid = uniform_grid(t0, t1, S)
    w = np.full(nodes, (t1 - t0) / (nodes - 1))
    w[[0, -1]] *= 0.5
    return _Grid(ts, grid, w, SolverConfig(solver=solver, steps=int(S)))


def _initial_weights(problem: Problem, W0, grid: _Grid, seed: int) -> np.ndarray:
    """W0: None/'zero', 'random' (N(0, 1/n) entries), an (n, n) or (T, n, n) array, a Program."""
    T, n = grid.nodes.size, problem.n
    if W0 is None or (isinstance(W0, str) and W0 == "zero"):
        return np.zeros((T, n, n), problem.dtype)
    if isinstance(W0, str) and W0 == "random":
        rng = np.random.default_rng(seed)
        return (rng.standard_normal((T, n, n)) / np.sqrt(n)).astype(problem.dtype)
    if isinstance(W0, Program):
        W0 = W0.weights(grid.nodes)
    W = np.asarray(W0, dtype=problem.dtype)
    if W.shape == (n, n):
        W = np.broadcast_to(W, (T, n, n)).copy()
    if W.shape != (T, n, n) or not np.isfinite(W).all():
        raise ValueError(f"W0 must be 'zero', 'random', a Program or a finite ({n}, {n}) or "
                         f"({T}, {n}, {n}) array, got shape {W.shape}")
    return W


def _integrate(field_fn, y0, t_from, t_to, step_ts, cfg: SolverConfig, save_ts, dense=False):
    solver = diffrax_solver(cfg.solver)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field_fn), solver, t_from, t_to, None, y0, None,
        saveat=diffrax.SaveAt(ts=save_ts, dense=dense),
        stepsize_controller=diffrax.StepTo(ts=step_ts), max_steps=cfg.steps, throw=False)
    return sol


def _forward(problem: Problem, Wn, steps, cfg, save_ts, dense=False):
    """S and the accumulated cost int l + ||W||^2/(2 beta) dt under the node program Wn."""
    t0, t1 = problem.t0, problem.t1

    def rhs(t, y, args):
        Z, _ = y
        W = interp_nodes(Wn, t, t0, t1)
        return problem.field(Z, W, t), problem.lagrangian(Z, W, t)

    y0 = (jnp.asarray(problem.Z0), jnp.zeros((), problem.dtype))
    return _integrate(rhs, y0, t0, t1, steps, cfg, save_ts, dense)


@eqx.filter_jit
def _cost(problem: Problem, Wn, steps, cfg):
    """J[W] = phi(Z(t1)) + int (l + ||W||^2/(2 beta)) dt for the node program Wn."""
    sol = _forward(problem, Wn, steps, cfg, jnp.asarray([problem.t1], problem.dtype))
    Z1, c1 = sol.ys[0][0], sol.ys[1][0]
    return problem.terminal_cost(Z1) + c1


@eqx.filter_jit
def _sweep_gradient(problem: Problem, Wn, nodes, steps, cfg):
    """J, and dH/dW at the nodes from the forward state and the backward costate (sec. 7)."""
    t0, t1 = problem.t0, problem.t1
    fwd = _forward(problem, Wn, steps, cfg, nodes, dense=True)
    Zn = fwd.ys[0]
    J = problem.terminal_cost(Zn[-1]) + fwd.ys[1][-1]
    Lam1 = jax.grad(problem.terminal_cost)(Zn[-1])

    def back(s, Lam, args):  # mu(s) = lambda(t1 - s): d mu/ds = +dH/dZ
        t = t1 - s
        Z = fwd.evaluate(t)[0]
        W = interp_nodes(Wn, t, t0, t1)
        return jax.grad(problem.hamiltonian)(Z, W, Lam, t)

    s_steps = (t1 - t0) - (steps[::-1] - t0)
    s_nodes = (t1 - t0) - (nodes[::-1] - t0)
    bwd = _integrate(back, Lam1, 0.0 * t0, t1 - t0, s_steps, cfg, s_nodes)
    Lam = bwd.ys[::-1]
    G = jax.vmap(jax.grad(problem.hamiltonian, argnums=1))(Zn, Wn, Lam, nodes)
    ok = (fwd.result == diffrax.RESULTS.successful) & (bwd.result == diffrax.RESULTS.successful)
    return J, G, ok & jnp.isfinite(J) & jnp.all(jnp.isfinite(G)) & jnp.all(jnp.isfinite(Zn))


def _l2(G, w) -> float:
    """(int ||G||_F^2 dt)^{1/2} by the trapezoid rule on the nodes."""
    return float(np.sqrt(np.sum(w * np.sum(np.asarray(G) ** 2, axis=(1, 2)))))


def _program(problem: Problem, Wn, grid: _Grid, stats: dict) -> GridProgram:
    offs = [np.broadcast_to(np.asarray(problem.dynamics.offset(t), problem.dtype), (problem.n,))
            for t in grid.nodes]
    return GridProgram(activation=problem.activation, t0=problem.t0, t1=problem.t1,
                       W=np.asarray(Wn), drive=np.stack(offs), solver=grid.cfg, stats=stats)


class _Log:
    """Per-iteration history and an optional tqdm bar."""

    def __init__(self, progress: bool, max_iter: int, desc: str):
        self.rows: list[dict] = []
        self.start = time.perf_counter()
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=max_iter, desc=desc)

    def add(self, it, J, res, step, evals):
        self.rows.append({"iteration": it, "J": J, "residual": res, "step": step,
                          "evals": evals, "seconds": time.perf_counter() - self.start})
        if self.bar is not None:
            if it > 0:
                self.bar.update(1)
            self.bar.set_postfix(J=f"{J:.10g}", residual=f"{res:.3g}")

    def close(self) -> pd.DataFrame:
        if self.bar is not None:
            self.bar.close()
        return pd.DataFrame(self.rows, columns=["iteration", "J", "residual", "step", "evals",
                                                "seconds"])


def _check_common(problem, max_iter, ftol, gtol):
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a weightsynth.Problem, got {type(problem).__name__}")
    check_int(max_iter, "max_iter", minimum=0)
    for v, name in ((ftol, "ftol"), (gtol, "gtol")):
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


def _stop_test(J, J_prev, res, ftol, gtol):
    if res <= gtol:
        return f"stationarity residual {res:.3g} <= gtol = {gtol:g}"
    if J_prev is not None and abs(J - J_prev) <= ftol * abs(J):
        return f"relative change in J {abs(J - J_prev) / max(abs(J), 1e-300):.3g} <= ftol"
    return None


def _finish(problem, Wn, grid, log, converged, reason, it, J, res, method, settings):
    history = log.close()
    stats = {"method": method, "iterations": it, "converged": converged, "reason": reason,
             "J": J, "residual": res}
    return GeneralResult(_program(problem, Wn, grid, stats), history, converged, reason, it,
                         J, res, settings)


# ---- the sweep ----------------------------------------------------------------------------
def sweep_synthesize(problem: Problem, *, W0=None, nodes: int = 101, substeps: int = 1,
                     solver: str = "tsit5", max_iter: int = 200, ftol: float = 1e-13,
                     gtol: float = 1e-8, armijo: float = 1e-4, max_halvings: int = 30,
                     seed: int = 0, progress: bool = False) -> GeneralResult:
    r"""Forward-backward sweep on the Pontryagin conditions (derivation eqs. 16-18).

    Each iteration: forward solve of S, backward solve of the costate, then
    W <- (1 - a) W + a W_new with W_new = W - beta dH/dW at every node (the closed form
    -beta sum_r lambda_r g(z_r)^T for the paper's f) and a chosen by Armijo backtracking so
    that J decreases. See the module docstring for the stopping rules.

    ``W0``: ``None``/``"zero"``, ``"random"`` (seeded by ``seed``), an (n, n) or (T, n, n)
    array, or a Program sampled at the nodes. ``nodes``: T, the W grid; ``substeps``:
    integration steps per grid interval; ``solver``: a fixed-step diffrax solver name.
    """
    _check_common(problem, max_iter, ftol, gtol)
    grid = _make_grid(problem, nodes, substeps, solver)
    Wn = jnp.asarray(_initial_weights(problem, W0, grid, seed))
    nd, st, cfg = (jnp.asarray(grid.nodes, problem.dtype), jnp.asarray(grid.steps, problem.dtype),
                   grid.cfg)
    J, G, ok = _sweep_gradient(problem, Wn, nd, st, cfg)
    if not bool(ok):
        raise ValueError("the initial program W0 gives a non-finite J, state or costate")
    J, res, a, evals = float(J), _l2(G, grid.weights), 1.0, 1
    log = _Log(progress, max_iter, "sweep")
    log.add(0, J, res, float("nan"), evals)
    J_prev, it, converged, reason = None, 0, False, None
    settings = dict(method="sweep", nodes=nodes, substeps=substeps, solver=solver,
                    max_iter=max_iter, ftol=ftol, gtol=gtol)
    while True:
        reason = _stop_test(J, J_prev, res, ftol, gtol)
        if reason is not None:
            converged = True
            break
        if it >= max_iter:
            reason = f"iteration cap reached (max_iter = {max_iter}) before convergence"
            break
        slope = problem.beta * res**2
        a, trial, J_new, n_eval = _armijo(problem, Wn, G, J, slope, min(1.0, 2 * a), armijo,
                                          max_halvings, st, cfg)
        evals += n_eval
        if trial is None:
            reason = (f"line search failed: no step a >= {a:.3g} decreased J "
                      f"({'non-finite trial J: divergence' if J_new is None else 'no decrease'})")
            break
        J_g, G_new, ok = _sweep_gradient(problem, trial, nd, st, cfg)
        evals += 1
        if not bool(ok):
            reason = "diverged: the costate or dH/dW became non-finite; last good program kept"
            break
        it += 1
        Wn, J_prev, J, G = trial, J, J_new, G_new
        res = _l2(G, grid.weights)
        log.add(it, J, res, a, evals)
    return _finish(problem, Wn, grid, log, converged, reason, it, J, res, "sweep", settings)


def _armijo(problem, Wn, G, J, slope, a, c, max_halvings, st, cfg):
    """Largest a = a0 / 2^k with J(W - a beta G) <= J - c a beta ||G||^2 (finite)."""
    saw_finite = False
    for k in range(max_halvings + 1):
        trial = Wn - (a * problem.beta) * G
        J_new = float(_cost(problem, trial, st, cfg))
        if np.isfinite(J_new):
            saw_finite = True
            if J_new <= J - c * a * slope and J_new <= J:
                return a, trial, J_new, k + 1
        a *= 0.5
    return 2 * a, None, (0.0 if saw_finite else None), max_halvings + 1


# ---- the direct method --------------------------------------------------------------------
def direct_synthesize(problem: Problem, *, W0=None, nodes: int = 101, substeps: int = 1,
                      solver: str = "tsit5", max_iter: int = 500, ftol: float = 1e-13,
                      gtol: float = 1e-8, history_length: int = 10, max_rejections: int = 40,
                      seed: int = 0, progress: bool = False) -> GeneralResult:
    r"""Direct method: W on T nodes, gradient by autodiff through the diffrax solve, L-BFGS.

    Minimizes the discretized J over the node values (in the scaled variables
    p_k = sqrt(w_k) W_k) with ``optimistix.LBFGS`` (Armijo backtracking), one accepted
    step per iteration. Arguments and stopping rules as in :func:`sweep_synthesize`;
    ``max_rejections`` consecutive rejected trial steps stop it ("line search failed").
    """
    _check_common(problem, max_iter, ftol, gtol)
    grid = _make_grid(problem, nodes, substeps, solver)
    W = _initial_weights(problem, W0, grid, seed)
    sqw = jnp.asarray(np.sqrt(grid.weights)[:, None, None], problem.dtype)
    st, cfg = jnp.asarray(grid.steps, problem.dtype), grid.cfg
    args = (problem, sqw, st, cfg)
    lbfgs = optx.LBFGS(rtol=0.0, atol=0.0, norm=optx.two_norm, history_length=history_length)
    y = jnp.asarray(W) * sqw
    f_struct = jax.ShapeDtypeStruct((), problem.dtype)
    state = _lbfgs_init(lbfgs, y, args, f_struct)
    y, state = _lbfgs_step(lbfgs, y, args, state)  # evaluates J and its gradient at W0
    J, res = float(state.f_info.f), float(optx.two_norm(state.f_info.grad))
    if not (np.isfinite(J) and np.isfinite(res)):
        raise ValueError("the initial program W0 gives a non-finite J or gradient")
    log = _Log(progress, max_iter, "direct")
    log.add(0, J, res, float("nan"), 1)
    good, J_prev, it, evals, rejected = y, None, 0, 1, 0
    settings = dict(method="direct", nodes=nodes, substeps=substeps, solver=solver,
                    max_iter=max_iter, ftol=ftol, gtol=gtol, history_length=history_length)
    converged = False
    while True:
        reason = _stop_test(J, J_prev, res, ftol, gtol)
        if reason is not None:
            converged = True
            break
        if it >= max_iter:
            reason = f"iteration cap reached (max_iter = {max_iter}) before convergence"
            break
        accepted_before = int(state.num_accepted_steps)
        y, state = _lbfgs_step(lbfgs, y, args, state)
        evals += 1
        if int(state.num_accepted_steps) == accepted_before:
            rejected += 1
            if rejected > max_rejections:
                reason = f"line search failed: {max_rejections} rejected trial steps in a row"
                break
            continue
        rejected = 0
        J_new, res_new = float(state.f_info.f), float(optx.two_norm(state.f_info.grad))
        if not (np.isfinite(J_new) and np.isfinite(res_new) and bool(jnp.all(jnp.isfinite(y)))):
            reason = "diverged: J or its gradient became non-finite; last good program kept"
            break
        it += 1
        good, J_prev, J, res = y, J, J_new, res_new
        log.add(it, J, res, float(state.search_state.step_size), evals)
    return _finish(problem, good / sqw, grid, log, converged, reason, it, J, res, "direct",
                   settings)


def _objective(p, args):
    problem, sqw, st, cfg = args
    return _cost(problem, p / sqw, st, cfg), None


@eqx.filter_jit
def _lbfgs_init(lbfgs, y, args, f_struct):
    return lbfgs.init(_objective, y, args, {}, f_struct, None, frozenset())


@eqx.filter_jit
def _lbfgs_step(lbfgs, y, args, state):
    y, state, _ = lbfgs.step(_objective, y, args, {}, state, frozenset())
    return y, state
