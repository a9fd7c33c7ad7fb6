"""Sweep configs: a protocol, a grid of parameters, and the cells it expands to.

A sweep config is a TOML file::

    protocol = "selftest"      # a registered protocol name, or "package.module:function"

    [grid]                     # lists of values; their cartesian product gives the cells
    x = [1, 2, 3]
    seed = [0, 1]

    [fixed]                    # the same value in every cell (optional)
    seconds = 0.5

    [sweep]                    # engine settings (optional)
    batch_size = 32

A protocol is a function ``protocol(**cell) -> list[dict]`` returning tidy records, one
dict per row. Names resolve first in this module's registry (``selftest``, and whatever
:func:`register_protocol` adds), then in ``weightsynth.experiments.PROTOCOLS`` when that
package exists; a string ``"module:function"`` is imported.

Each cell has a stable key: the SHA-256 of the canonical JSON (sorted keys, no spaces) of
``{"params": cell, "protocol": name, "version": weightsynth version}``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import itertools
import json
import os
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

Protocol = Callable[..., list]

_REGISTRY: dict[str, Protocol] = {}
_SECTIONS = {"protocol", "grid", "fixed", "sweep"}
_SWEEP_KEYS = {"batch_size"}


def selftest(x: float, seconds: float = 0.0, sleep: float = 0.0, fail: bool = False,
             rows: int = 1, log_dir: str | None = None,
             exit_once: str | None = None) -> list[dict]:
    """A cheap protocol to test and benchmark the sweep engine (no JAX, no maths).

    Burns ``seconds`` of this process's CPU time (a busy loop), sleeps ``sleep`` s, returns
    ``rows`` records ``{"x", "i", "y" = x**2 + i, "cpu_s", "pid"}``. With ``fail`` it raises
    RuntimeError. With ``log_dir`` it first writes one file per call there (to count calls).
    With ``exit_once`` (a marker path) the first call to create the marker kills its own
    process with ``os._exit(1)``, simulating a worker that dies mid-sweep.
    """
    if log_dir is not None:
        Path(log_dir, f"{x}-{os.getpid()}-{time.time_ns()}.call").write_text(str(x))
    if exit_once is not None:
        try:
            os.close(os.open(exit_once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os._exit(1)
    used = _spin(float(seconds))
    time.sleep(float(sleep))
    if fail:
        raise RuntimeError(f"selftest cell x={x!r} failed on purpose")
    return [{"x": x, "i": i, "y": float(x) ** 2 + i, "cpu_s": used, "pid": os.getpid()}
            for i in range(int(rows))]


def _spin(seconds: float) -> float:
    """Busy-loop until this process has used ``seconds`` of CPU time; return the time used."""
    start = time.process_time()
    acc = 0
    while time.process_time() - start < seconds:
        for k in range(2000):
            acc += k * k
    return time.process_time() - start


_REGISTRY["selftest"] = selftest


def register_protocol(name: str, fn: Protocol) -> None:
    """Register ``fn`` as protocol ``name`` (for the sweep engine in this process).

    Workers resolve protocols by name, so on a real cluster prefer a ``"module:function"``
    string or a name that every worker registers too.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"protocol name must be a non-empty string without ':', got {name!r}")
    if not callable(fn):
        raise ValueError(f"protocol {name!r} must be callable, got {type(fn).__name__}")
    _REGISTRY[name] = fn


def available_protocols() -> dict[str, Protocol]:
    """All protocols known by name: the experiments package's and this registry's."""
    out: dict[str, Protocol] = {}
    if importlib.util.find_spec("weightsynth.experiments") is not None:
        experiments = importlib.import_module("weightsynth.experiments")
        out.update(getattr(experiments, "PROTOCOLS", {}))
    out.update(_REGISTRY)
    return out


def resolve_protocol(spec: str | Protocol) -> tuple[str, Protocol]:
    """Return ``(name, function)`` for a protocol name, ``"module:function"`` or callable."""
    if callable(spec):
        return f"{spec.__module__}:{spec.__qualname__}", spec
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"protocol must be a name or 'module:function', got {spec!r}")
    if ":" in spec:
        return spec, _import_protocol(spec)
    if spec in _REGISTRY:
        return spec, _REGISTRY[spec]
    known = available_protocols()
    if spec not in known:
        raise ValueError(f"unknown protocol {spec!r} (known: {', '.join(sorted(known))}; "
                         "or give 'package.module:function')")
    return spec, known[spec]


def _import_protocol(spec: str) -> Protocol:
    module_name, _, attr = spec.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"unknown protocol {spec!r}: cannot import {module_name!r} "
                         f"({exc})") from None
    for part in attr.split("."):
        obj = getattr(obj, part, None)
    if not callable(obj):
        raise ValueError(f"unknown protocol {spec!r}: {module_name!r} has no function {attr!r}")
    return obj


def check_parameters(name: str, fn: Protocol, keys) -> None:
    """Raise ValueError if ``keys`` has a parameter ``fn`` does not take, or lacks one it needs."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    params = sig.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(keys) - accepted)
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} for protocol {name!r} "
                         f"(it takes: {', '.join(sorted(accepted))})")
    required = [p.name for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    missing = [k for k in required if k not in keys]
    if missing:
        raise ValueError(f"protocol {name!r} needs parameter {missing[0]!r}, which neither "
                         "the grid nor the fixed values give")


def _json_default(obj):
    if hasattr(obj, "item") and callable(obj.item):  # NumPy scalars
        return obj.item()
    if hasattr(obj, "tolist") and callable(obj.tolist):  # NumPy arrays
        return obj.tolist()
    raise TypeError(f"value {obj!r} of type {type(obj).__name__} is not JSON-serializable")


def canonical_json(obj) -> str:
    """Canonical JSON: sorted keys, no spaces, NumPy scalars as Python numbers."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cell parameters must be JSON values: {exc}") from None


def cell_key(protocol: str, params: Mapping, version: str) -> str:
    """Stable cell key: sha256 of canonical JSON of protocol name, parameters and version."""
    text = canonical_json({"params": dict(params), "protocol": protocol, "version": version})
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class SweepConfig:
    """A parsed sweep config: protocol spec, grid (name -> list of values), fixed values."""

    protocol: str
    grid: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    batch_size: int | None = None

    def cells(self) -> list[dict]:
        """The cartesian product of the grid, each cell merged with the fixed values."""
        names = list(self.grid)
        return [{**self.fixed, **dict(zip(names, combo, strict=True))}
                for combo in itertools.product(*(self.grid[k] for k in names))]

    def as_dict(self) -> dict:
        """The config as plain data (for the manifest)."""
        out = {"protocol": self.protocol, "grid": self.grid, "fixed": self.fixed}
        if self.batch_size is not None:
            out["sweep"] = {"batch_size": self.batch_size}
        return out


def parse_sweep_config(data: Mapping, *, source: str = "config") -> SweepConfig:
    """Validate a config mapping (as read from TOML) and return a :class:`SweepConfig`."""
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise ValueError(f"{source}: unknown key {unknown[0]!r} (expected: protocol, "
                         "[grid], [fixed], [sweep])")
    if "protocol" not in data:
        raise ValueError(f"{source}: missing 'protocol = \"name\"'")
    grid, fixed, sweep = (data.get(k, {}) for k in ("grid", "fixed", "sweep"))
    for name, table in (("grid", grid), ("fixed", fixed), ("sweep", sweep)):
        if not isinstance(table, Mapping):
            raise ValueError(f"{source}: '{name}' must be a table [{name}], got {table!r}")
    if not grid:
        raise ValueError(f"{source}: empty grid: give [grid] at least one parameter "
                         "with a list of values")
    for k, values in grid.items():
        if not isinstance(values, list):
            raise ValueError(f"{source}: grid parameter {k!r} must be a list of values, "
                             f"got {values!r}")
        if not values:
            raise ValueError(f"{source}: empty grid: grid parameter {k!r} has no values")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ValueError(f"{source}: parameter {both[0]!r} is in both [grid] and [fixed]")
    bad = sorted(set(sweep) - _SWEEP_KEYS)
    if bad:
        raise ValueError(f"{source}: unknown [sweep] setting {bad[0]!r} (known: batch_size)")
    batch = sweep.get("batch_size")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)
                              or batch < 1):
        raise ValueError(f"{source}: batch_size must be a positive integer, got {batch!r}")
    name, fn = resolve_protocol(data["protocol"])
    check_parameters(name, fn, set(grid) | set(fixed))
    canonical_json({"grid": grid, "fixed": fixed})
    return SweepConfig(protocol=data["protocol"], grid=dict(grid), fixed=dict(fixed),
                       batch_size=batch)


def load_sweep_config(path: str | os.PathLike) -> SweepConfig:
    """Read and validate a TOML sweep config; ValueError names any problem in one line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = " ".join(str(exc).split())
        raise ValueError(f"malformed TOML in {str(path)!r}: {msg}") from None
    return parse_sweep_config(data, source=str(path))
