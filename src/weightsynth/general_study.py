r"""Study protocol for programs synthesized under the general indices (issue 4, item 4).

:func:`general_study_cell` draws exactly the data of the experiments package's
``autoassoc`` protocol for the same (n, load, noise, seed, base_seed) (random bipolar
exemplars, noisy training samples, fresh noisy test samples), so its rows pair with the
baseline rules' rows of that protocol. For each index (``"correlation"``: -sum_r
g(z_r(t1)).theta_r, ``"squared_error"``: sum_r ||g(z_r(t1)) - theta_r||^2, ``"paper"``: eq. 3,
each plus (1/(2 beta))||W||^2) it synthesizes W(t) with :func:`sweep_synthesize` or
:func:`direct_synthesize`, runs N from the training and the fresh inputs and reports one
row per (method, split, t) with the experiments' metric names. Every solve starts from the
analytic program W* of the paper's index (:func:`~weightsynth.synthesize`): from W = 0 both
solvers converge slowly on the paper's index once L is ~10 or more (J stays far above J*
after 100 iterations at n = 16, L = 10), while W* is its exact optimum.
"""

from __future__ import annotations

import numpy as np

from .general import direct_synthesize, sweep_synthesize
from .problem import Problem
from .synthesis import synthesize

INDEX_NAMES = ("correlation", "squared_error", "paper")


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


def general_study_cell(*, n: int, load: float, noise: float, beta: float, t1: float,
                       seed: int, base_seed: int = 0, indices=INDEX_NAMES,
                       solver: str = "sweep", samples_per_exemplar: int = 5,
                       test_samples_per_exemplar: int = 5, amplitude: float = 0.5,
                       n_times: int = 25, nodes: int = 51, max_iter: int = 100) -> list[dict]:
    """One cell: programs under each index in ``indices``, recall on train and test inputs.

    Row keys: protocol ("general"), method ("general-<index>"), split ("train"/"test"), n,
    K, L, load, noise, beta, t1, seed, t, bit_accuracy, overlap, exact_recall; the last
    train row of each method also carries J (the index it was synthesized for), converged
    and iterations.
    """
    from .experiments.data import cell_rng, n_exemplars, noisy_samples, random_exemplars

    if solver not in ("sweep", "direct"):
        raise ValueError(f"solver must be 'sweep' or 'direct', got {solver!r}")
    rng = cell_rng("autoassoc", n, float(load), float(noise), seed, base_seed=base_seed)
    K = n_exemplars(load, n)
    ex = random_exemplars(K, n, rng)
    train = noisy_samples(ex, samples_per_exemplar, noise, amplitude, rng)
    test = noisy_samples(ex, test_samples_per_exemplar, noise, amplitude, rng)
    ts = np.linspace(0.0, float(t1), int(n_times))
    base = dict(protocol="general", n=n, K=K, L=len(train.inputs), load=float(load),
                noise=float(noise), beta=float(beta), t1=float(t1), seed=int(seed))
    solve = sweep_synthesize if solver == "sweep" else direct_synthesize
    start = synthesize(train.inputs, train.targets, beta=float(beta), t1=float(t1))
    rows: list[dict] = []
    for name in indices:
        problem = Problem(train.inputs, train.targets, name, beta=float(beta), t1=float(t1))
        res = solve(problem, W0=start, nodes=nodes, max_iter=max_iter)
        for split, s in (("train", train), ("test", test)):
            Z = res.program.trajectory(s.inputs, ts)
            part = _rows(ts, Z, np.asarray(problem.activation.g(Z)), s.targets,
                         dict(base, method=f"general-{name}", split=split, solver=solver))
            if split == "train":
                part[-1].update(J=res.J, converged=res.converged, iterations=res.iterations)
            rows += part
    return rows
