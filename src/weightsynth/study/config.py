r"""Study parameters: a frozen :class:`StudyConfig`, its quick variant, and TOML loading.

Defaults follow the paper's Section 3 setting as reconstructed in docs/experiments.md:
autoassociation of random bipolar exemplars, n = 100 neurons, 5 noisy training samples per
exemplar with 15% flipped bits at amplitude a = 0.5 (inside tanh's range), beta = 1/n = 0.01,
t in [0, 6]. With these, the optimal program reproduces the measurement of docs/derivation.md
section 6 (bit accuracy 0.84 -> 0.92 at t = 0.5 -> 0.65 at t = 6 at load 0.14).

The *load* is exemplars per neuron, K / n (Hopfield's alpha); the training set holds
L = K * samples_per_exemplar pairs (phi_r, theta_r) with theta_r the exemplar.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

BASE_METHODS: tuple[str, ...] = (
    "optimal", "outer_continuous", "outer_discrete", "projection", "storkey", "dense",
)
#: Programs synthesized under the general recall indices (derivation eq. 19; protocol ``general``).
GENERAL_METHODS: tuple[str, ...] = ("general-correlation", "general-squared_error")
METHOD_NAMES: tuple[str, ...] = BASE_METHODS + GENERAL_METHODS
#: Methods of protocol ``maps`` (study/maps.py; docs/experiments.md)
MAPS_METHODS: tuple[str, ...] = ("synth", "general-squared_error", "hebbian", "pinv",
                                 "ridge", "logistic", "knn", "mlp")
MAPS_TASKS: tuple[str, ...] = ("hetero", "digits", "smooth")
#: hyperparameter values each tuned method of protocol maps may try on its validation split
MAPS_BUDGET = 4


@dataclass(frozen=True)
class StudyConfig:
    """Every parameter of the study (see docs/experiments.md for each one's meaning)."""

    n: tuple[int, ...] = (100,)
    loads: tuple[float, ...] = (0.05, 0.1, 0.14, 0.2)
    noise: tuple[float, ...] = (0.05, 0.15, 0.25)
    beta: tuple[float, ...] = (0.01, 0.03)
    t1: tuple[float, ...] = (6.0,)
    seeds: int = 20
    seed: int = 0
    methods: tuple[str, ...] = METHOD_NAMES
    samples_per_exemplar: int = 5
    test_samples_per_exemplar: int = 5
    amplitude: float = 0.5
    n_times: int = 25
    claim_times: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 6.0)
    curve_load: float = 0.14
    curve_noise: float = 0.15
    digits_noise: tuple[float, ...] = (0.1, 0.2, 0.3)
    #: protocol general (docs/experiments.md): the paper's size, programs by the feedback
    #: solver (docs/general.md), 5 and 20 training samples per exemplar
    general_n: int = 100
    general_loads: tuple[float, ...] = (0.05, 0.1, 0.14, 0.2)
    general_noise: tuple[float, ...] = (0.1, 0.25)
    general_beta: tuple[float, ...] = (0.01,)
    general_t1: tuple[float, ...] = (0.5, 1.0, 2.0, 6.0)
    general_samples: tuple[int, ...] = (5, 20)
    general_solver: str = "feedback"
    general_nodes: int = 26
    #: a cap: at t1 <= 2 the programs converge in well under 100 iterations, at t1 = 6 the
    #: short-horizon-first schedule needs 300-900 (docs/experiments.md, "Long run")
    general_max_iter: int = 1000
    #: protocol maps (docs/experiments.md): tasks, seeds, grids and methods (see study/maps.py)
    maps_tasks: tuple[str, ...] = ("hetero", "digits", "smooth")
    maps_seeds: int = 20
    maps_loads: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3)
    maps_noise: tuple[float, ...] = (0.1, 0.25)
    maps_digits_sizes: tuple[int, ...] = (50, 100, 200, 400, 800, 1200)
    maps_smooth_sizes: tuple[int, ...] = (50, 100, 200, 400, 800, 1200)
    maps_methods: tuple[str, ...] = MAPS_METHODS
    quick: bool = field(default=False, compare=False)

    def __post_init__(self):
        _validate(self)


#: The quick variant: n = 64 (the digits' size, so compiled solvers are shared), few seeds,
#: two loads, beta = 1/n, and a tiny general-index study (n = 16, one load, t1 = 1);
#: `reproduce --quick` in ~2 minutes on 2 cores.
QUICK_OVERRIDES: dict = dict(
    n=(64,), loads=(0.05, 0.15), noise=(0.15,), beta=(1 / 64,), seeds=5,
    claim_times=(0.25, 0.5, 2.0, 6.0), curve_load=0.15, digits_noise=(0.25,),
    general_n=16, general_loads=(0.15,), general_noise=(0.15,), general_beta=(1 / 16,),
    general_t1=(1.0,), general_samples=(5,), general_max_iter=40, maps_seeds=1,
    maps_loads=(0.1,), maps_noise=(0.15,),
    maps_digits_sizes=(100,), maps_smooth_sizes=(100,),
    maps_methods=("synth", "hebbian", "pinv", "ridge", "knn"), quick=True,
)


def default_config(quick: bool = False) -> StudyConfig:
    """The embedded defaults (full study, or the quick variant)."""
    base = StudyConfig()
    return replace(base, **QUICK_OVERRIDES) if quick else base


_TUPLE_INT = {"n", "maps_digits_sizes", "maps_smooth_sizes", "general_samples"}
_TUPLE_STR = {"methods", "maps_methods", "maps_tasks"}
_TUPLE_FLOAT = {"loads", "noise", "beta", "t1", "claim_times", "digits_noise",
                "general_loads", "general_noise", "general_beta", "general_t1",
                "maps_loads", "maps_noise"}
_INT = {"seeds", "seed", "samples_per_exemplar", "test_samples_per_exemplar", "n_times",
        "general_n", "general_nodes", "general_max_iter", "maps_seeds"}
_FLOAT = {"amplitude", "curve_load", "curve_noise"}
_STR = {"general_solver"}
#: solvers of protocol general (study/general.py)
GENERAL_SOLVERS: tuple[str, ...] = ("feedback", "sweep", "direct")


def _check_list(name, values, kind, lo=None, hi=None, lo_open=False):
    if len(values) == 0:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        _check_scalar(name, v, kind, lo, hi, lo_open)


def _check_scalar(name, v, kind, lo=None, hi=None, lo_open=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name} must be a number, got {v!r}")
    if kind is int and not float(v).is_integer():
        raise ValueError(f"{name} must be an integer, got {v!r}")
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {v!r}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {v!r}")


def _validate(c: StudyConfig) -> None:
    _check_list("n", c.n, int, lo=4)
    _check_list("loads", c.loads, float, lo=0.0, lo_open=True)
    _check_list("noise", c.noise, float, lo=0.0, hi=0.5)
    _check_list("digits_noise", c.digits_noise, float, lo=0.0, hi=0.5)
    _check_list("beta", c.beta, float, lo=0.0, lo_open=True)
    _check_list("t1", c.t1, float, lo=0.0, lo_open=True)
    _check_list("claim_times", c.claim_times, float, lo=0.0)
    for name in ("seeds", "samples_per_exemplar", "test_samples_per_exemplar"):
        _check_scalar(name, getattr(c, name), int, lo=1)
    _check_scalar("seed", c.seed, int, lo=0)
    _check_scalar("n_times", c.n_times, int, lo=2)
    _check_scalar("amplitude", c.amplitude, float, lo=0.0, lo_open=True)
    if c.amplitude >= 1.0:
        raise ValueError(f"amplitude must be < 1 (inside tanh's range), got {c.amplitude!r}")
    _check_scalar("curve_load", c.curve_load, float, lo=0.0, lo_open=True)
    _check_scalar("curve_noise", c.curve_noise, float, lo=0.0, hi=0.5)
    if not c.methods:
        raise ValueError("methods must not be empty")
    for m in c.methods:
        if m not in METHOD_NAMES:
            raise ValueError(f"unknown method {m!r}; known: {', '.join(METHOD_NAMES)}")
    _check_scalar("general_n", c.general_n, int, lo=4)
    _check_list("general_loads", c.general_loads, float, lo=0.0, lo_open=True)
    _check_list("general_noise", c.general_noise, float, lo=0.0, hi=0.5)
    _check_list("general_beta", c.general_beta, float, lo=0.0, lo_open=True)
    _check_list("general_t1", c.general_t1, float, lo=0.0, lo_open=True)
    _check_list("general_samples", c.general_samples, int, lo=1)
    if c.general_solver not in GENERAL_SOLVERS:
        raise ValueError(f"unknown general_solver {c.general_solver!r}; known: "
                         f"{', '.join(GENERAL_SOLVERS)}")
    _check_scalar("general_nodes", c.general_nodes, int, lo=2)
    _check_scalar("general_max_iter", c.general_max_iter, int, lo=0)
    _validate_maps(c)
    if max(c.claim_times) > min(c.t1):
        raise ValueError(f"claim_times must be <= t1 = {min(c.t1)}, got {max(c.claim_times)}")


def _validate_maps(c: StudyConfig) -> None:
    for name, known in (("maps_tasks", MAPS_TASKS), ("maps_methods", MAPS_METHODS)):
        for v in getattr(c, name):
            if v not in known:
                raise ValueError(f"unknown {name} entry {v!r}; known: {', '.join(known)}")
    _check_scalar("maps_seeds", c.maps_seeds, int, lo=1)
    _check_list("maps_loads", c.maps_loads, float, lo=0.0, lo_open=True)
    _check_list("maps_noise", c.maps_noise, float, lo=0.0, hi=0.5)
    _check_list("maps_digits_sizes", c.maps_digits_sizes, int, lo=20, hi=1300)
    _check_list("maps_smooth_sizes", c.maps_smooth_sizes, int, lo=20)


def _coerce(name: str, value):
    if name in _TUPLE_INT | _TUPLE_FLOAT | _TUPLE_STR:
        seq = value if isinstance(value, (list, tuple)) else [value]
        if name in _TUPLE_STR:
            if not all(isinstance(v, str) for v in seq):
                raise ValueError(f"{name} must be names (strings), got {value!r}")
            return tuple(seq)
        for v in seq:
            _check_scalar(name, v, int if name in _TUPLE_INT else float)
        return tuple(int(v) if name in _TUPLE_INT else float(v) for v in seq)
    if name in _INT:
        _check_scalar(name, value, int)
        return int(value)
    if name in _FLOAT:
        _check_scalar(name, value, float)
        return float(value)
    if name in _STR:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a name (string), got {value!r}")
        return value
    raise ValueError(f"unknown config key {name!r}")  # pragma: no cover - caught earlier


def with_overrides(config: StudyConfig, overrides: dict) -> StudyConfig:
    """A copy of ``config`` with ``overrides`` applied (values coerced and validated)."""
    known = {f.name for f in fields(StudyConfig)} - {"quick"}
    clean = {}
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(f"unknown config key {key!r}; known: {', '.join(sorted(known))}")
        clean[key] = _coerce(key, value)
    return replace(config, **clean)


def load_config(path, quick: bool = False) -> StudyConfig:
    """Read a TOML file of overrides (top level, or under a ``[study]`` table)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ValueError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    if set(data) == {"study"} and isinstance(data["study"], dict):
        data = data["study"]
    return with_overrides(default_config(quick), data)


#: checks of single cell parameters, shared by the study's protocols: name -> (kind, lo,
#: hi, lo_open), as in :func:`_validate`
_CELL_CHECKS = {
    "n": (int, 4, None, False), "load": (float, 0.0, None, True),
    "noise": (float, 0.0, 0.5, False), "beta": (float, 0.0, None, True),
    "t1": (float, 0.0, None, True), "seed": (int, 0, None, False),
    "base_seed": (int, 0, None, False), "samples_per_exemplar": (int, 1, None, False),
    "test_samples_per_exemplar": (int, 1, None, False), "n_times": (int, 2, None, False),
    "amplitude": (float, 0.0, 1.0, True), "nodes": (int, 2, None, False),
    "max_iter": (int, 0, None, False),
}


def validate_cell(**params) -> None:
    """Check one cell's parameter values without running it (the protocols' dry run).

    The sweep engine calls this (as ``protocol.validate``) on every cell before anything
    runs, so ``beta = -1`` stops the sweep with one message instead of failing each cell.
    """
    for name, value in params.items():
        if name in _CELL_CHECKS:
            kind, lo, hi, lo_open = _CELL_CHECKS[name]
            _check_scalar(name, value, kind, lo, hi, lo_open)
    if params.get("amplitude", 0.0) >= 1.0:
        raise ValueError(f"amplitude must be < 1 (inside tanh's range), got "
                         f"{params['amplitude']!r}")
    for m in params.get("methods", ()):
        if m not in METHOD_NAMES:
            raise ValueError(f"unknown method {m!r}; known: {', '.join(METHOD_NAMES)}")
