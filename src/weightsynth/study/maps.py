r"""Protocol ``maps`` (docs/experiments.md, Arbitrary maps): the synthesized network as a
model of an arbitrary map.

One cell = one task, one training-set size (or load and noise), one seed. Tasks:

* ``hetero``: K random pairs (x_k, y_k) in {-1, +1}^n; training inputs are noisy copies of
  x_k (each bit flipped with probability ``noise``), ``samples`` per pair, test inputs
  fresh noisy copies. Error: bit error of the method's output vector against y_k.
* ``digits``: scikit-learn's 8x8 digits, n = 64 pixels to 10 classes; a seeded random
  training subset of size L and a fixed-size held-out test set. Error: 1 - accuracy.
* ``smooth``: y = tanh(A x + b), a random teacher with A ~ N(0, 1/n), b ~ N(0, 0.1^2),
  x ~ N(0, I_n), n = 32 outputs. Error: test mean squared error.

Methods: ``synth`` (the closed-form program, :class:`~weightsynth.SynthesisClassifier` /
:class:`~weightsynth.SynthesisRegressor`), ``general-squared_error`` (the general solver on
the terminal squared error by the feedback solver, :class:`~weightsynth.SynthesisRegressor`
or, on the digits, :class:`~weightsynth.SynthesisClassifier` on the classes' +-1 codes;
its rows give ``converged`` and ``iterations``), the classical ``hebbian``
heteroassociator (W = sum_r t_r x_r^T / L on centred inputs) and ``pinv`` linear associator
(W = T^T pinv(X)^T, least squares), and scikit-learn's ``ridge``, ``logistic``, ``knn``,
``mlp``. Hyperparameters are tuned on a validation split (a quarter of the training set)
from a grid of :data:`BUDGET` values for every tuned method, then refit on the whole
training set; the chosen value is in the row (``chosen``).
"""

from __future__ import annotations

import json
import math
import time
import warnings

import numpy as np

from ..estimators import SynthesisClassifier, SynthesisRegressor
from .config import MAPS_BUDGET
from .data import cell_rng

BUDGET = MAPS_BUDGET

#: method -> list of parameter dicts (each list has BUDGET entries, or 1: no tuning)
GRIDS = {
    "synth": [dict(beta_mul=0.5, t1=1.0), dict(beta_mul=2.0, t1=1.0),
              dict(beta_mul=8.0, t1=1.0), dict(beta_mul=2.0, t1=3.0)],
    "ridge": [dict(alpha=a) for a in (0.1, 1.0, 10.0, 100.0)],
    "logistic": [dict(C=c) for c in (0.01, 0.1, 1.0, 10.0)],
    "knn": [dict(n_neighbors=k) for k in (1, 3, 5, 9)],
    "mlp": [dict(alpha=a) for a in (1e-4, 1e-3, 1e-2, 1e-1)],
    "hebbian": [{}], "pinv": [{}],
    "general-squared_error": [dict(beta=b, t1=1.0) for b in (0.1, 0.3, 1.0, 3.0)],
}
CLASSIFY = ("synth", "general-squared_error", "hebbian", "pinv", "ridge", "logistic", "knn",
            "mlp")
REGRESS = ("synth", "general-squared_error", "hebbian", "pinv", "ridge", "knn", "mlp")
#: the hetero task's classifiers: they predict which pair an input copies and output its y;
#: every other method of REGRESS maps the input to an output vector there
HETERO_CLASSIFIERS = ("logistic", "knn", "mlp")


class _Linear:
    """Hebbian or pseudo-inverse linear associator on centred inputs (targets as given)."""

    def __init__(self, rule: str):
        self.rule = rule

    def fit(self, X, T):
        self.mx, self.mt = X.mean(axis=0), T.mean(axis=0)
        Xc, Tc = X - self.mx, T - self.mt
        if self.rule == "hebbian":
            self.W = Tc.T @ Xc / len(X)
        else:
            self.W = Tc.T @ np.linalg.pinv(Xc).T
        return self

    def predict(self, X):
        return self.mt + (X - self.mx) @ self.W.T


def _auto_beta(L: int, n_state: int, scale: float = 0.5) -> float:
    return 1.0 / (scale**2 * n_state * L)


def _make(method: str, kind: str, p: dict, d: int, m: int, L: int, seed: int, quick: bool):
    """A fresh model for ``kind`` in {'class', 'reg'} with parameters ``p``."""
    from sklearn import linear_model, neighbors, neural_network

    cls = SynthesisClassifier if kind == "class" else SynthesisRegressor
    if method == "synth":
        m_code = 2 ** math.ceil(math.log2(m + 1)) if kind == "class" else m
        beta = p["beta_mul"] * _auto_beta(L, d + m_code)
        return cls(beta=beta, t1=p["t1"], steps=20)
    if method == "general-squared_error":
        return cls(beta=p["beta"], t1=p["t1"], index="squared_error", steps=20, nodes=11,
                   max_iter=1000, tol=1e-6)
    if method in ("hebbian", "pinv"):
        return _Linear(method)
    if method == "knn":   # a grid value above the training-set size means all of it
        p = dict(p, n_neighbors=min(p["n_neighbors"], L))
    it = 100 if quick else 200
    table = {
        ("ridge", "class"): lambda: linear_model.RidgeClassifier(**p),
        ("ridge", "reg"): lambda: linear_model.Ridge(**p),
        ("logistic", "class"): lambda: linear_model.LogisticRegression(max_iter=1000, **p),
        ("knn", "class"): lambda: neighbors.KNeighborsClassifier(**p),
        ("knn", "reg"): lambda: neighbors.KNeighborsRegressor(**p),
        ("mlp", "class"): lambda: neural_network.MLPClassifier(
            max_iter=it, random_state=seed, **p),
        ("mlp", "reg"): lambda: neural_network.MLPRegressor(max_iter=it, random_state=seed,
                                                            **p),
    }
    return table[method, kind]()


def _onehot(y, k):
    T = -np.ones((len(y), k))
    T[np.arange(len(y)), y] = 1.0
    return T


def _predict(model, method, kind, X, k):
    """Class labels (kind 'class') or outputs (kind 'reg')."""
    out = model.predict(X)
    if kind == "class" and method in ("hebbian", "pinv"):
        return np.argmax(out, axis=1)
    return out


def _fit(model, method, kind, X, y, k):
    if kind == "class" and method in ("hebbian", "pinv"):
        return model.fit(X, _onehot(y, k))
    return model.fit(X, y)


def _error(kind, pred, y, targets=None):
    """kind 'class': 1 - accuracy (or, with ``targets`` (k, n), bit error of targets[pred]);
    'reg': mean squared error; 'bits': bit error of sign(pred)."""
    if kind == "class":
        if targets is not None:
            return float(np.mean(targets[pred] != targets[y]))
        return float(np.mean(pred != y))
    if kind == "bits":
        return float(np.mean(np.where(pred >= 0, 1.0, -1.0) != y))
    return float(np.mean((pred - y) ** 2))


#: without tuning (quick mode), every method takes the second value of its grid
UNTUNED = 1


def _tuned(method, kind, Xtr, ytr, k, seed, quick, score, tune=True):
    """Pick the grid value with the least validation error, refit on all training data
    (``tune=False``: the grid's entry UNTUNED, no validation fits)."""
    from sklearn.exceptions import ConvergenceWarning

    grid = GRIDS[method]
    mk = ytr.shape[1] if ytr.ndim == 2 else k
    best = grid[min(UNTUNED, len(grid) - 1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if tune and len(grid) > 1:
            rng = np.random.default_rng(seed)
            perm = rng.permutation(len(Xtr))
            nv = max(1, len(Xtr) // 4)
            va, tr = perm[:nv], perm[nv:]
            errs = []
            for p in grid:
                mdl = _fit(_make(method, kind, p, Xtr.shape[1], mk, len(tr), seed, quick),
                           method, kind, Xtr[tr], ytr[tr], k)
                errs.append(score(_predict(mdl, method, kind, Xtr[va], k), ytr[va]))
            best = grid[int(np.nanargmin(errs))]
        t = time.perf_counter()
        mdl = _fit(_make(method, kind, best, Xtr.shape[1], mk, len(Xtr), seed, quick),
                   method, kind, Xtr, ytr, k)
        fit_s = time.perf_counter() - t
    return mdl, best, fit_s


def _rows(task, methods, kind, Xtr, ytr, Xte, yte, k, seed, quick, score, base,
          confusion=False):
    tune = base.get("tuned", True)
    rows = []
    for m in methods:
        try:
            mdl, best, fit_s = _tuned(m, kind, Xtr, ytr, k, seed, quick, score, tune)
            pred = _predict(mdl, m, kind, Xte, k)
            row = dict(base, method=m, error=score(pred, yte), fit_seconds=fit_s,
                       chosen=json.dumps(best), budget=len(GRIDS[m]) if tune else 1)
            info = getattr(mdl, "solve_info_", None)
            if info:  # the general solver's final fit: did it converge, in how many steps
                row.update(converged=bool(info["converged"]), iterations=int(info["iterations"]))
            if confusion:
                from sklearn.metrics import confusion_matrix

                row["confusion"] = json.dumps(confusion_matrix(yte, pred,
                                                               labels=range(k)).tolist())
            rows.append(row)
        except ValueError as exc:  # a solve that fails is reported, not hidden
            rows.append(dict(base, method=m, error=np.nan, failed=f"{exc}"[:200]))
    return rows


def _base(task, n, L, seed, load=np.nan, noise=np.nan, tune=True):
    return dict(protocol="maps", task=task, split="test", n=n, L=int(L), load=load,
                noise=noise, beta=np.nan, t1=np.nan, seed=int(seed), t=np.nan,
                tuned=bool(tune))


def _hetero(*, seed, base_seed, load, noise, n, samples, methods, quick, tune):
    rng = cell_rng("maps-hetero", n, float(load), float(noise), seed, base_seed=base_seed)
    K = max(2, int(round(load * n)))
    Xk = np.where(rng.random((K, n)) < 0.5, -1.0, 1.0)
    Yk = np.where(rng.random((K, n)) < 0.5, -1.0, 1.0)
    lab = np.repeat(np.arange(K), samples)

    def noisy():
        return Xk[lab] * np.where(rng.random((len(lab), n)) < noise, -1.0, 1.0)

    Xtr, Xte = noisy(), noisy()
    base = _base("hetero", n, len(lab), seed, float(load), float(noise), tune)
    meths = methods or CLASSIFY
    reg = [m for m in meths if m in REGRESS and m not in HETERO_CLASSIFIERS]
    cls = [m for m in meths if m in HETERO_CLASSIFIERS]
    return (_rows("hetero", reg, "reg", Xtr, Yk[lab], Xte, Yk[lab], K, seed, quick,
                  lambda p, y: _error("bits", p, y), base)
            + _rows("hetero", cls, "class", Xtr, lab, Xte, lab, K, seed, quick,
                    lambda p, y: _error("class", p, y, Yk), base))


def _digits(*, seed, base_seed, size, methods, quick, tune, with_confusion):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = cell_rng("maps-digits", seed, base_seed=base_seed)
    perm = rng.permutation(len(X))
    te, tr = perm[:497], perm[497:][:size]
    meths = [m for m in (methods or CLASSIFY) if m in CLASSIFY]
    return _rows("digits", meths, "class", X[tr], y[tr], X[te], y[te], 10, seed, quick,
                 lambda p, t: _error("class", p, t), _base("digits", 64, size, seed, tune=tune),
                 confusion=with_confusion)


def smooth_data(n: int, size: int, seed: int, base_seed: int = 0):
    """The smooth task's data of one cell: (Xtr, ytr, Xte, yte), ``size`` training and 500
    test samples of y = tanh(A x + b) (see the module docstring)."""
    rng = cell_rng("maps-smooth", n, seed, base_seed=base_seed)
    A = rng.standard_normal((n, n)) / math.sqrt(n)
    b = 0.1 * rng.standard_normal(n)
    Xtr, Xte = rng.standard_normal((size, n)), rng.standard_normal((500, n))
    return Xtr, np.tanh(Xtr @ A.T + b), Xte, np.tanh(Xte @ A.T + b)


def _smooth(*, seed, base_seed, size, n, methods, quick, tune):
    meths = [m for m in (methods or REGRESS) if m in REGRESS]
    return _rows("smooth", meths, "reg", *smooth_data(n, size, seed, base_seed), n, seed,
                 quick, lambda p, t: _error("reg", p, t),
                 _base("smooth", n, size, seed, tune=tune))


def maps_cell(*, task: str, seed: int, base_seed: int = 0, size: int = 0,
              load: float = 0.1, noise: float = 0.15, n: int = 100, samples: int = 5,
              methods=None, quick: bool = False, with_confusion: bool = False,
              tune: bool = True) -> list[dict]:
    """One cell of the ``maps`` protocol; rows: (method, error, fit_seconds, chosen,
    budget). ``tune=False`` skips the validation fits (quick mode)."""
    common = dict(seed=seed, base_seed=base_seed, methods=methods, quick=quick, tune=tune)
    if task == "hetero":
        return _hetero(load=load, noise=noise, n=n, samples=samples, **common)
    if task == "digits":
        return _digits(size=size, with_confusion=with_confusion, **common)
    if task == "smooth":
        return _smooth(size=size, n=n, **common)
    raise ValueError(f"task must be 'hetero', 'digits' or 'smooth', got {task!r}")
