r"""Study protocol for programs synthesized under the general indices (derivation eq. 19).

:func:`general_study_cell` draws exactly the data of the experiments package's
``autoassoc`` protocol for the same (n, load, noise, seed, base_seed) (random bipolar
exemplars, noisy training samples, fresh noisy test samples). For each index
(``"correlation"``: phi = -sum_r g(z_r(t1)).theta_r, ``"squared_error"``: phi = sum_r
||g(z_r(t1)) - theta_r||^2, ``"paper"``: eq. 3; each plus (1/(2 beta)) int ||W||^2 dt) it
synthesizes W(t) with :func:`feedback_synthesize` (default), :func:`sweep_synthesize` or
:func:`direct_synthesize`, runs N from the training and the fresh inputs and reports one
row per (method, split, t) with the experiments' metric names. The same cell also runs the
``baselines`` (outer-product, projection, Storkey, ...) on the same samples, so every
comparison is paired by seed.

Every solve starts from the analytic program W* of the paper's index
(:func:`~weightsynth.synthesize`): from W = 0 the sweep and direct solvers converge slowly
once L is ~10 or more, and at t1 = 6 the indices have several local minima, one next to
W = 0 (the feedback solver's defaults also try a short horizon first there:
docs/general.md, "Long horizons"). The recall indices reward the outputs at t1
only, while the weight penalty grows with t1: at beta = 1/n and t1 = 6 their optimum is
close to W = 0 (the outputs decay), so the study runs them at short horizons too.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import trapezoid

from ..control.feedback import feedback_synthesize
from ..control.problem import Problem
from ..control.solvers import direct_synthesize, sweep_synthesize
from ..core.cost import evaluate_index
from ..core.synthesis import synthesize
from .config import GENERAL_SOLVERS, validate_cell
from .data import cell_rng, n_exemplars, noisy_samples, random_exemplars
from .methods import Task, pad_rows, training_pairs
from .protocols import evaluate_methods

INDEX_NAMES = ("correlation", "squared_error", "paper")
BASELINES = ("optimal", "outer_continuous", "outer_discrete", "projection", "storkey")


def _rows(ts, states, outputs, targets, base: dict) -> list[dict]:
    """bit_accuracy (sign(z) vs theta), overlap (mean theta.g(z)/n), exact_recall."""
    n = targets.shape[1]
    rows = []
    for t, Z, Y in zip(ts, states, outputs, strict=True):
        right = np.where(Z >= 0.0, 1.0, -1.0) == targets
        rows.append(dict(base, t=float(t), bit_accuracy=float(right.mean()),
                         overlap=float(np.mean(np.sum(Y * targets, axis=1) / n)),
                         exact_recall=float(np.mean(right.all(axis=1)))))
    return rows


#: times at which :func:`weight_norm` samples W(t)
_NORM_TIMES = 101


def weight_norm(program) -> float:
    """The program's root-mean-square weight size over [t0, t1],
    sqrt((1/(t1 - t0)) int ||W(t)||_F^2 dt) (trapezoid rule on 101 times): what its weight
    penalty (1/(2 beta)) int ||W||_F^2 dt charges for, comparable with a rule's ||W||_F."""
    t0, t1 = float(program.t0), float(program.t1)
    ts = np.linspace(t0, t1, _NORM_TIMES)
    # 8 times at a time (all 101 matrices at once would be 3.4 GB at n = 2048), the last
    # block padded with t1 so that every call has one shape (one compilation)
    padded = np.concatenate([ts, np.full(-_NORM_TIMES % 8, t1)]).reshape(-1, 8)
    sq = np.concatenate([np.sum(np.asarray(program.weights(block)) ** 2, axis=(1, 2))
                         for block in padded])[:_NORM_TIMES]
    return float(np.sqrt(trapezoid(sq, ts) / (t1 - t0)))


def _solve_rows(name, solve, train, test, ts, base, beta, t1, start, nodes, max_iter, pad):
    """Synthesize under index ``name``; recall rows on both splits. The last train row
    carries J_index (the index it minimized), converged, iterations, residual, the
    paper's index J (eq. 3) of this program with J* and the excess J - J*, and the
    program's :func:`weight_norm`.

    The training pairs are zero-padded to ``pad`` rows: a pair phi = 0, theta = 0 starts at
    z = 0 and stays there (g(0) = 0), costs nothing under every index here and has a zero
    costate, so the padding is exact; it lets every load share one compiled solver. The
    feedback solver's work grows with L (as n L^2 per pass in the factor form, n^2 L in
    the weight coordinates it picks once L >= n / 4), so it solves the unpadded pairs: one
    compilation per L, seconds against minutes of solving."""
    rows_solved = len(train.inputs) if solve is feedback_synthesize else pad
    phi, theta = pad_rows(train.inputs, rows_solved), pad_rows(train.targets, rows_solved)
    problem = Problem(phi, theta, name, beta=beta, t1=t1)
    res = solve(problem, W0=start, nodes=nodes, max_iter=max_iter)
    rows: list[dict] = []
    for split, s in (("train", train), ("test", test)):
        B = len(s.inputs)
        Z = np.asarray(res.program.trajectory(pad_rows(s.inputs, pad), ts))[:, :B]
        part = _rows(ts, Z, np.asarray(problem.activation.g(Z)), s.targets,
                     dict(base, method=f"general-{name}", split=split))
        if split == "train":
            paper = evaluate_index(res.program, train.inputs, train.targets, beta=beta)
            part[-1].update(J_index=float(res.J), converged=bool(res.converged),
                            iterations=int(res.iterations), residual=float(res.residual),
                            J=paper.J, J_star=paper.J_star, excess=paper.excess,
                            weight_norm=weight_norm(res.program))
        rows += part
    return rows


def general_study_cell(*, n: int, load: float, noise: float, beta: float, t1: float,
                       seed: int, base_seed: int = 0, indices=INDEX_NAMES[:2],
                       baselines=BASELINES, solver: str = "feedback",
                       samples_per_exemplar: int = 5, test_samples_per_exemplar: int = 5,
                       amplitude: float = 0.5, n_times: int = 25, nodes: int = 26,
                       max_iter: int = 60, pad_K: int | None = None) -> list[dict]:
    """One cell: programs under each index in ``indices`` and the ``baselines`` (names of
    :data:`weightsynth.experiments.METHODS`), recall on train and test inputs.

    Row keys: protocol ("general"), method ("general-<index>", a baseline or "input"),
    split ("train"/"test"), solver, n, K, L, load, noise, beta, t1, seed, t, bit_accuracy,
    overlap, exact_recall; see :func:`_solve_rows` for the extra keys of the last train row.
    Times: ``n_times`` equally spaced on [0, t1] (the general programs target t1).
    ``pad_K``: solve as if there were that many exemplars (exact zero padding, see
    :func:`_solve_rows`), so cells of different loads share compiled solvers.
    """
    if solver not in GENERAL_SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(GENERAL_SOLVERS)}, got {solver!r}")
    bad = [i for i in indices if i not in INDEX_NAMES]
    if bad:
        raise ValueError(f"unknown index {bad[0]!r}; known: {', '.join(INDEX_NAMES)}")
    rng = cell_rng("autoassoc", n, float(load), float(noise), seed, base_seed=base_seed)
    K = n_exemplars(load, n)
    ex = random_exemplars(K, n, rng)
    train = noisy_samples(ex, samples_per_exemplar, noise, amplitude, rng)
    test = noisy_samples(ex, test_samples_per_exemplar, noise, amplitude, rng)
    ts = np.linspace(0.0, float(t1), int(n_times))
    base = dict(protocol="general", n=n, K=K, L=len(train.inputs), load=float(load),
                noise=float(noise), beta=float(beta), t1=float(t1),
                samples_per_exemplar=int(samples_per_exemplar), seed=int(seed),
                solver=solver)  # every row, the baselines' too: the cell's parameters
    rows: list[dict] = []
    pK = max(K, pad_K or 0)
    pad = pK * max(samples_per_exemplar, test_samples_per_exemplar)
    if baselines:
        task = Task(ex, train.inputs, train.targets, float(beta), float(t1),
                    seed=int(rng.integers(2**31)), pad_L=pK * samples_per_exemplar)
        rows += evaluate_methods(task, {"train": train, "test": test}, ts, tuple(baselines),
                                 base, index=False,
                                 batch=pK * (samples_per_exemplar + test_samples_per_exemplar))
    solve = {"sweep": sweep_synthesize, "direct": direct_synthesize,
             "feedback": feedback_synthesize}[solver]
    if solve is feedback_synthesize:  # W* of the (unpadded) problem: C = beta Theta
        start = "closed_form"
    else:
        start = synthesize(*training_pairs(Task(ex, train.inputs, train.targets, float(beta),
                                                float(t1), pad_L=pad)),
                           beta=float(beta), t1=float(t1))
    for name in indices:
        rows += _solve_rows(name, solve, train, test, ts, base,
                            float(beta), float(t1), start, nodes, max_iter, pad)
    return rows


general_study_cell.validate = validate_cell  # the sweep engine's dry run (see study.config)
