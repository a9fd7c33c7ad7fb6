r"""Experiment protocols: each call runs ONE cell (one seed, one parameter setting) and
returns tidy records, one dict per (method, split, t). No plotting here.

* ``autoassoc``: random bipolar exemplars (docs/experiments.md, Setting). Measures (a)
  learning curves over the training samples versus t, (b) performance versus load and
  corruption (the cell grid), and (c) generalization to fresh corrupted samples
  (``split == "test"``).
* ``digits``: (d) scikit-learn's 8x8 digits, one binarized exemplar per class; splits
  ``train``, ``test`` (fresh corrupted copies) and ``real`` (other handwritten digits of the
  class, binarized, as inputs).
* ``weights``: (e) the weight program itself: max |W*(t0) - beta Theta^T Phi| (derivation
  eq. 12) and ||W*(t) - W_H||_F / ||W_H||_F over t, W_H = beta Theta^T Theta.

Because the optimal program's closed loop runs forward only (the costate is the constant
-theta for every horizon), W* restricted to [t0, t] is the optimal program for horizon t;
so one program on [t0, t1] gives the results for every shorter horizon t.

Metrics per row: ``bit_accuracy`` (sign(z) vs target, averaged over bits and samples),
``overlap`` (mean of theta.y/n, y = g(z) or the +-1 state), ``exact_recall`` (fraction of
samples with every bit right), ``z_theta`` (mean z.theta/n, the activation correlation the
index J rewards, continuous methods), and on the train split at t = t1 for continuous
methods ``J``, ``J_star`` and ``excess`` (eq. 3, evaluated with the same beta).
"""

from __future__ import annotations

import numpy as np

from ..core.cost import evaluate_index
from .config import BASE_METHODS, validate_cell
from .data import Samples, cell_rng, digits_exemplars, n_exemplars, noisy_samples, random_exemplars
from .methods import CONTINUOUS, Task, hopfield_matrix, run_method, training_pairs


def time_grid(t1: float, n_times: int, extra=()) -> np.ndarray:
    """``n_times`` equally spaced times on [0, t1], plus the ``extra`` times inside it."""
    ts = np.linspace(0.0, t1, int(n_times))
    extra = [float(t) for t in extra if 0.0 <= t <= t1]
    return np.unique(np.round(np.concatenate([ts, extra]), 12))


def _metric_rows(times, states, outputs, targets, base: dict, continuous: bool) -> list[dict]:
    rows = []
    n = targets.shape[1]
    for t, Z, Y in zip(times, states, outputs, strict=True):
        right = np.where(Z >= 0.0, 1.0, -1.0) == targets
        row = dict(base, t=float(t), bit_accuracy=float(right.mean()),
                   overlap=float(np.mean(np.sum(Y * targets, axis=1) / n)),
                   exact_recall=float(np.mean(right.all(axis=1))))
        row["z_theta"] = float(np.mean(np.sum(Z * targets, axis=1) / n)) if continuous \
            else np.nan
        rows.append(row)
    return rows


def _input_rows(splits: dict[str, Samples], base: dict) -> list[dict]:
    rows = []
    for split, s in splits.items():
        x = s.inputs[None]
        rows += _metric_rows([np.nan], x, x, s.targets,
                             dict(base, method="input", split=split), False)
    return rows


def evaluate_methods(task: Task, splits: dict[str, Samples], ts, methods, base: dict,
                     index: bool, batch: int | None = None) -> list[dict]:
    """Run every method once on all splits' queries; one row per (method, split, t)."""
    rows = _input_rows(splits, base)
    queries = np.concatenate([s.inputs for s in splits.values()])
    bounds = np.cumsum([0] + [len(s.inputs) for s in splits.values()])
    for m in methods:
        rec = run_method(m, task, queries, ts, batch)
        cont = m in CONTINUOUS
        for (split, s), lo, hi in zip(splits.items(), bounds[:-1], bounds[1:], strict=True):
            part = _metric_rows(rec.times, rec.states[:, lo:hi], rec.outputs[:, lo:hi],
                                s.targets, dict(base, method=m, split=split), cont)
            if index and cont and split == "train":
                res = evaluate_index(rec.program, *training_pairs(task), beta=task.beta)
                part[-1].update(J=res.J, J_star=res.J_star, excess=res.excess)
            rows += part
    return rows


def autoassoc_cell(*, n: int, load: float, noise: float, beta: float, t1: float, seed: int,
                   base_seed: int = 0, methods=BASE_METHODS, samples_per_exemplar: int = 5,
                   test_samples_per_exemplar: int = 5, amplitude: float = 0.5,
                   n_times: int = 25, claim_times=(), index: bool = True,
                   pad_K: int | None = None) -> list[dict]:
    """Protocols (a)-(c) for one cell: train on noisy samples, test on fresh ones.

    The data depend only on (base_seed, n, load, noise, seed), so settings that differ only
    in beta, t1 or methods see the same samples (paired comparisons). ``pad_K`` zero-pads
    the continuous methods' arrays as if there were that many exemplars (exact; it only
    lets cells of different loads share compiled solvers).
    """
    rng = cell_rng("autoassoc", n, float(load), float(noise), seed, base_seed=base_seed)
    K = n_exemplars(load, n)
    ex = random_exemplars(K, n, rng)
    train = noisy_samples(ex, samples_per_exemplar, noise, amplitude, rng)
    test = noisy_samples(ex, test_samples_per_exemplar, noise, amplitude, rng)
    pK = max(K, pad_K or 0)
    task = Task(ex, train.inputs, train.targets, float(beta), float(t1),
                seed=int(rng.integers(2**31)), pad_L=pK * samples_per_exemplar)
    base = dict(protocol="autoassoc", n=n, K=K, L=len(train.inputs), load=float(load),
                noise=float(noise), beta=float(beta), t1=float(t1), seed=int(seed))
    ts = time_grid(t1, n_times, claim_times)
    return evaluate_methods(task, {"train": train, "test": test}, ts, methods, base, index,
                            batch=_batch(pK, samples_per_exemplar, test_samples_per_exemplar))


def digits_cell(*, noise: float, beta: float, t1: float, seed: int, base_seed: int = 0,
                methods=BASE_METHODS, samples_per_exemplar: int = 5,
                test_samples_per_exemplar: int = 5, amplitude: float = 0.5,
                n_times: int = 25, claim_times=(), index: bool = False) -> list[dict]:
    """Protocol (d): the 8x8 digits, 10 binarized class exemplars, n = 64."""
    rng = cell_rng("digits", float(noise), seed, base_seed=base_seed)
    ex, X, y = digits_exemplars()
    train = noisy_samples(ex, samples_per_exemplar, noise, amplitude, rng)
    test = noisy_samples(ex, test_samples_per_exemplar, noise, amplitude, rng)
    pick = np.concatenate([rng.choice(np.flatnonzero(y == k), test_samples_per_exemplar,
                                      replace=False) for k in range(10)])
    real = Samples(amplitude * X[pick], ex[y[pick]], y[pick])
    task = Task(ex, train.inputs, train.targets, float(beta), float(t1),
                seed=int(rng.integers(2**31)))
    base = dict(protocol="digits", n=64, K=10, L=len(train.inputs), load=10 / 64,
                noise=float(noise), beta=float(beta), t1=float(t1), seed=int(seed))
    return evaluate_methods(task, {"train": train, "test": test, "real": real},
                            time_grid(t1, n_times, claim_times), methods, base, index,
                            batch=_digits_batch(samples_per_exemplar, test_samples_per_exemplar))


def _digits_batch(spe: int, tspe: int) -> int:
    return _batch(10, spe, tspe)


def _batch(K: int, spe: int, tspe: int) -> int:
    """Rows of the padded query batch: room for a train and two test splits of K classes,
    so autoassociation at n = 64 and the digits share one compiled solver."""
    return K * (spe + 2 * tspe)


def _optimal_run(*, n, load, noise, beta, t1, seed, base_seed, samples_per_exemplar,
                 amplitude, n_times, claim_times, test_samples_per_exemplar, pad_K):
    """The autoassoc training data of one cell and the optimal program's run on it (shared
    by ``weights_cell`` and ``weight_snapshots``, so both see the same data and solver)."""
    rng = cell_rng("autoassoc", n, float(load), float(noise), seed, base_seed=base_seed)
    K = n_exemplars(load, n)
    ex = random_exemplars(K, n, rng)
    train = noisy_samples(ex, samples_per_exemplar, noise, amplitude, rng)
    pK = max(K, pad_K or 0)
    task = Task(ex, train.inputs, train.targets, float(beta), float(t1),
                pad_L=pK * samples_per_exemplar)
    ts = time_grid(t1, n_times, claim_times)
    rec = run_method("optimal", task, train.inputs, ts,
                     batch=_batch(pK, samples_per_exemplar, test_samples_per_exemplar))
    return K, train, task, ts, rec


def weights_cell(*, n: int, load: float, noise: float, beta: float, t1: float, seed: int,
                 base_seed: int = 0, samples_per_exemplar: int = 5, amplitude: float = 0.5,
                 n_times: int = 25, claim_times=(), test_samples_per_exemplar: int = 5,
                 pad_K: int | None = None) -> list[dict]:
    r"""Protocol (e): W*(t) against beta Theta^T Phi at t0 and against W_H over t.

    Rows carry ``w_t0_err`` = max |W*(t0) - beta Theta^T Phi| (at t = t0 only),
    ``w_hopfield_rel`` = ||W*(t) - W_H||_F / ||W_H||_F, ``output_err`` = max_r ||g(z_r(t)) -
    theta_r||_inf and the training ``bit_accuracy``.
    """
    K, train, task, ts, rec = _optimal_run(
        n=n, load=load, noise=noise, beta=beta, t1=t1, seed=seed, base_seed=base_seed,
        samples_per_exemplar=samples_per_exemplar, amplitude=amplitude, n_times=n_times,
        claim_times=claim_times, test_samples_per_exemplar=test_samples_per_exemplar,
        pad_K=pad_K)
    Ws = rec.program.weights(ts)
    WH = hopfield_matrix(task)
    Z = rec.states
    W0 = beta * train.targets.T @ train.inputs
    base = dict(protocol="weights", method="optimal", split="train", n=n, K=K,
                L=len(train.inputs), load=float(load), noise=float(noise), beta=float(beta),
                t1=float(t1), seed=int(seed))
    rows = []
    for t, W, Zt in zip(ts, Ws, Z, strict=True):
        rows.append(dict(
            base, t=float(t),
            w_t0_err=float(np.max(np.abs(W - W0))) if t == ts[0] else np.nan,
            w_t0_scale=float(np.max(np.abs(W0))),
            w_hopfield_rel=float(np.linalg.norm(W - WH) / np.linalg.norm(WH)),
            output_err=float(np.max(np.abs(np.tanh(Zt) - train.targets))),
            bit_accuracy=float(np.mean(np.where(Zt >= 0, 1.0, -1.0) == train.targets))))
    return rows


def weight_snapshots(*, n: int, load: float, noise: float, beta: float, t1: float,
                     seed: int = 0, base_seed: int = 0, samples_per_exemplar: int = 5,
                     amplitude: float = 0.5, times=None, pad_K: int | None = None,
                     test_samples_per_exemplar: int = 5, n_times: int = 25,
                     claim_times=()) -> dict:
    """W*(t) at a few ``times`` and W_H, for the heatmap figure (same data as
    ``weights_cell``). Times snap to the cell's time grid, so no solver is recompiled."""
    _, _, task, grid, rec = _optimal_run(
        n=n, load=load, noise=noise, beta=beta, t1=t1, seed=seed, base_seed=base_seed,
        samples_per_exemplar=samples_per_exemplar, amplitude=amplitude, n_times=n_times,
        claim_times=claim_times, test_samples_per_exemplar=test_samples_per_exemplar,
        pad_K=pad_K)
    want = np.asarray(times if times is not None else np.linspace(0, t1, 4), float)
    times = grid[np.unique([int(np.argmin(np.abs(grid - t))) for t in want])]
    return {"times": times, "W": rec.program.weights(grid)[np.isin(grid, times)],
            "W_H": hopfield_matrix(task)}


def digits_examples(*, noise: float, beta: float, t1: float, seed: int = 0,
                    base_seed: int = 0, methods=BASE_METHODS, samples_per_exemplar: int = 5,
                    test_samples_per_exemplar: int = 5, amplitude: float = 0.5,
                    times=(0.5,), n_times: int = 25, claim_times=()) -> dict:
    """Images for the digits figure: exemplars, one fresh corrupted input per class, and
    each method's recall (continuous methods at each of ``times`` and at t1)."""
    rng = cell_rng("digits-examples", float(noise), seed, base_seed=base_seed)
    ex, _, _ = digits_exemplars()
    train = noisy_samples(ex, samples_per_exemplar, noise, amplitude, rng)
    query = noisy_samples(ex, 1, noise, amplitude, rng)
    task = Task(ex, train.inputs, train.targets, float(beta), float(t1), seed=0)
    grid = time_grid(t1, n_times, claim_times)   # the cells' grid: no recompilation
    keep = np.isin(np.round(grid, 9), np.round(np.r_[[t for t in times if 0 < t < t1], t1], 9))
    panels = {"exemplar": ex, "input": np.sign(query.inputs)}
    for m in methods:
        batch = _digits_batch(samples_per_exemplar, test_samples_per_exemplar)
        rec = run_method(m, task, query.inputs, grid, batch=batch)
        if m in CONTINUOUS:
            for t, Z in zip(rec.times[keep], rec.states[keep], strict=True):
                panels[f"{m} t={t:g}"] = np.where(Z >= 0, 1.0, -1.0)
        else:
            panels[m] = rec.states[-1]
    return panels


# the sweep engine's dry run: parameter values are checked before any cell runs
autoassoc_cell.validate = validate_cell
digits_cell.validate = validate_cell
weights_cell.validate = validate_cell
