"""Sweep configs: a protocol, a grid of parameters, and the cells it expands to.

A sweep config is a TOML file::

    protocol = "autoassoc"     # a protocol name, or "package.module:function"

    [grid]                     # lists of values; their cartesian product gives the cells
    load = [0.05, 0.1]
    seed = [0, 1]

    [fixed]                    # the same value in every cell (optional)
    n = 64

    [sweep]                    # engine settings (optional)
    batch_size = 32

A protocol is a function ``protocol(**cell) -> list[dict]`` returning tidy records, one
dict per row. Names resolve first in this process's registry (what :func:`register_protocol`
adds), then in the ``weightsynth.protocols`` entry-point group, where installed packages
declare theirs (the study's ``autoassoc``, ``digits``, ... come from there); a string
``"module:function"`` is imported.

Each cell has a stable key: the SHA-256 of the canonical JSON (sorted keys, no spaces) of
``{"params": cell, "protocol": name, "version": weightsynth version}``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import itertools
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._validation import check_int

Protocol = Callable[..., list]

ENTRY_POINT_GROUP = "weightsynth.protocols"
_REGISTRY: dict[str, Protocol] = {}
_SECTIONS = {"protocol", "grid", "fixed", "sweep"}
_SWEEP_KEYS = {"batch_size"}




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
    """All protocols known by name: those installed packages declare, then this registry's.

    A package offers protocols through the ``weightsynth.protocols`` entry-point group (the
    study declares its own in pyproject.toml), so the engine needs no knowledge of them.
    """
    out: dict[str, Protocol] = {ep.name: ep.load() for ep in _entry_points()}
    out.update(_REGISTRY)
    return out


def _entry_points():
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


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
    for ep in _entry_points():
        if ep.name == spec:
            return spec, ep.load()
    # the names only: loading every entry point would let one broken plug-in hide this error
    known = {ep.name for ep in _entry_points()} | set(_REGISTRY)
    raise ValueError(f"unknown protocol {spec!r} (known: {', '.join(sorted(known))}; "
                     "or give 'package.module:function')")


def worker_spec(spec: str | Protocol, fn: Protocol) -> str | Protocol:
    """What to send the workers for protocol ``spec`` (resolved to ``fn`` here).

    Entry-point names and ``"module:function"`` strings resolve on every worker. A name
    that :func:`register_protocol` added in this process alone is unknown there, so the
    function itself is shipped (pickled by reference: its module must import on workers).
    """
    if isinstance(spec, str) and spec not in _REGISTRY:
        return spec
    return fn


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
        raise ValueError(f"unknown parameter{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))} for protocol {name!r} "
                         f"(it takes: {', '.join(sorted(accepted))})")
    required = [p.name for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    missing = [k for k in required if k not in keys]
    if missing:
        raise ValueError(f"protocol {name!r} needs parameter{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(map(repr, missing))}, which neither the grid nor the "
                         "fixed values give")


def check_values(name: str, fn: Protocol, cells) -> None:
    """Run the protocol's own ``validate(**cell)`` (if it has one) on every cell, before
    anything runs: a bad value is a ValueError here rather than a failed cell later.

    ``validate`` is an attribute of the protocol function that checks parameter values
    without computing anything (a dry run); distinct problems are listed, up to three.
    """
    validate = getattr(fn, "validate", None)
    if validate is None:
        return
    problems: dict[str, int] = {}
    for cell in cells:
        try:
            validate(**cell)
        except (ValueError, TypeError) as exc:
            msg = " ".join(str(exc).split())
            problems[msg] = problems.get(msg, 0) + 1
    if problems:
        shown = "; ".join(f"{m} ({k} cell{'s' if k > 1 else ''})"
                          for m, k in list(problems.items())[:3])
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ValueError(f"protocol {name!r} rejects parameter values: {shown}{more}")


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
    batch = check_int(sweep.get("batch_size"), f"{source}: batch_size", none_ok=True)
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
