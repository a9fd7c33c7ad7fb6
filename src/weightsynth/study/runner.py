"""Cells of the study grid, and a simple sequential runner with a progress bar.

A *cell* is the keyword arguments of one protocol call (one seed, one parameter setting).
:func:`expand_grid` lists them; :func:`run_cells` runs them in order. A parallel engine
(e.g. Dask) can call ``PROTOCOLS[name](**cell)`` on each cell instead: cells are plain dicts
of numbers, strings and tuples, and each carries everything its seed derives from.
"""

from __future__ import annotations

import itertools

import pandas as pd

from .config import BASE_METHODS, StudyConfig
from .data import n_exemplars
from .general import general_study_cell
from .maps import maps_cell
from .protocols import autoassoc_cell, digits_cell, weights_cell

# the study's protocols by name (also declared as weightsynth.protocols entry points)
PROTOCOLS = {"autoassoc": autoassoc_cell, "digits": digits_cell, "weights": weights_cell,
             "general": general_study_cell, "maps": maps_cell}


def _common(c: StudyConfig) -> dict:
    return dict(base_seed=c.seed, samples_per_exemplar=c.samples_per_exemplar,
                amplitude=c.amplitude, n_times=c.n_times, claim_times=tuple(c.claim_times))


def expand_grid(config: StudyConfig) -> dict[str, list[dict]]:
    """Protocol name -> list of cells for ``config``.

    * autoassoc: the full product n x loads x noise x beta x t1 x seeds, plus the
      learning-curve setting (curve_load, curve_noise) for every n, beta, t1 and seed.
    * digits: digits_noise x beta x t1 x seeds (n = 64 is fixed by the data).
    * weights: loads x {0, curve_noise} x n x beta x t1 x min(seeds, 5) (claims 1 and 2 are
      deterministic properties; a few seeds show their spread).
    * general: general_loads x general_noise x general_beta x general_t1 x seeds at
      n = general_n, for the ``general-*`` methods in ``config.methods`` (none: no cells);
      each cell also runs the other chosen methods (but dense) as paired baselines.
    """
    c, common = config, _common(config)
    methods = tuple(m for m in c.methods if m in BASE_METHODS)
    extra = dict(common, methods=methods, test_samples_per_exemplar=c.test_samples_per_exemplar)
    seeds = range(c.seeds)
    pairs = list(itertools.product(c.loads, c.noise))
    if (c.curve_load, c.curve_noise) not in pairs:
        pairs.append((c.curve_load, c.curve_noise))
    pad = {n: max(n_exemplars(ld, n) for ld, _ in pairs) for n in c.n}
    auto = [dict(extra, n=n, load=ld, noise=nz, beta=b, t1=t1, seed=s, pad_K=pad[n])
            for n, (ld, nz), b, t1, s in itertools.product(c.n, pairs, c.beta, c.t1, seeds)]
    digits = [dict(extra, noise=nz, beta=b, t1=t1, seed=s)
              for nz, b, t1, s in itertools.product(c.digits_noise, c.beta, c.t1, seeds)]
    wnoise = sorted({0.0, c.curve_noise})
    weights = [dict(common, n=n, load=ld, noise=nz, beta=b, t1=t1, seed=s, pad_K=pad[n],
                    test_samples_per_exemplar=c.test_samples_per_exemplar)
               for n, ld, nz, b, t1, s in itertools.product(
                   c.n, c.loads, wnoise, c.beta, c.t1, range(min(c.seeds, 5)))]
    grids = {"autoassoc": auto, "digits": digits, "weights": weights}
    indices = tuple(m.removeprefix("general-") for m in c.methods if m.startswith("general-"))
    if indices:
        grids["general"] = _general_cells(c, indices, tuple(m for m in methods
                                                            if m != "dense"))
    grids["maps"] = maps_cells(c)
    return {k: v for k, v in grids.items() if v}


def maps_cells(c: StudyConfig) -> list[dict]:
    """Protocol maps (docs/experiments.md): hetero at maps_loads x maps_noise (n = 100), digits and
    smooth (n = 32) at their training-set sizes, maps_seeds seeds each; digits cells at the
    largest size also record the confusion matrix. Quick mode skips the tuning fits."""
    common = dict(base_seed=c.seed, methods=tuple(c.maps_methods), quick=c.quick,
                  tune=not c.quick)
    cells = []
    for s in range(c.maps_seeds):
        if "hetero" in c.maps_tasks:
            cells += [dict(common, task="hetero", n=100, load=ld, noise=nz, seed=s)
                      for ld, nz in itertools.product(c.maps_loads, c.maps_noise)]
        if "digits" in c.maps_tasks:
            big = max(c.maps_digits_sizes)
            cells += [dict(common, task="digits", size=sz, seed=s, with_confusion=sz == big)
                      for sz in c.maps_digits_sizes]
        if "smooth" in c.maps_tasks:
            cells += [dict(common, task="smooth", n=32, size=sz, seed=s)
                      for sz in c.maps_smooth_sizes]
    return cells


def _general_cells(c: StudyConfig, indices: tuple, baselines: tuple) -> list[dict]:
    common = dict(base_seed=c.seed, test_samples_per_exemplar=c.test_samples_per_exemplar,
                  amplitude=c.amplitude, n_times=c.n_times, nodes=c.general_nodes,
                  max_iter=c.general_max_iter, indices=indices, baselines=baselines,
                  solver=c.general_solver)
    pad = max(n_exemplars(ld, c.general_n) for ld in c.general_loads)
    return [dict(common, n=c.general_n, load=ld, noise=nz, beta=b, t1=t1,
                 samples_per_exemplar=sp, seed=s, pad_K=pad)
            for sp, ld, nz, b, t1, s in itertools.product(
                c.general_samples, c.general_loads, c.general_noise, c.general_beta,
                c.general_t1, range(c.seeds))]


def run_cells(protocol: str, cells: list[dict], progress: bool = True) -> pd.DataFrame:
    """Run ``PROTOCOLS[protocol]`` on each cell in order; all records as one DataFrame."""
    try:
        fn = PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}"
                         ) from None
    rows: list[dict] = []
    if progress and cells:
        from tqdm.auto import tqdm

        it = tqdm(cells, desc=protocol, unit="cell", leave=True)
    else:
        it = cells
    for cell in it:
        rows.extend(fn(**cell))
    return pd.DataFrame.from_records(rows)
