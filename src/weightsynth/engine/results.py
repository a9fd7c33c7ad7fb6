"""The sweep results store: a Parquet dataset, an errors table and a manifest, under one folder.

Layout of ``DIR``::

    DIR/manifest.json            config, package version and environment of each run
    DIR/.lock                    held (flock) by the one driver writing to DIR
    DIR/results/part-*.parquet   tidy records, one file per finished batch of cells
    DIR/errors/part-*.parquet    cells that raised: parameters, error and traceback

Every file is written under a temporary name (``.part-*.tmp``) and renamed, so only
complete files carry a final name. Each Parquet file's schema metadata
(``weightsynth.sweep``) lists the keys of the cells the batch holds; a cell is *done* when
its key is listed by a readable results file. A file that is not readable or lacks the
metadata (truncated, corrupt, a left-over temporary file, a foreign file) is reported with
:class:`CorruptFileWarning` and ignored: never read as results, and its cells run again.

One driver at a time: :meth:`SweepStore.lock` takes an exclusive ``flock`` on
``DIR/.lock`` for the whole run, so a second ``weightsynth sweep`` on the same folder stops
at once with an error naming the holder. The kernel drops the lock when its process ends,
however it ends, so a killed driver leaves no stale lock. (Where ``flock`` is unavailable,
as on some network file systems, a second driver would compute cells twice but still
never show duplicates: see below.)

Reading deduplicates by cell: the rows of a cell key come from the first file (in name
order, i.e. write order) that lists it. The engine also never writes a done key again.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import sys
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._version import __version__
from ..formats.program_file import atomic_write_bytes

FORMAT = "weightsynth.sweep"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LOCK = ".lock"
_META = b"weightsynth.sweep"
_KINDS = ("results", "errors")


class CorruptFileWarning(UserWarning):
    """A file in a sweep folder is partial, corrupt or foreign, and was ignored."""


@dataclass(frozen=True)
class BadFile:
    """A file the store ignored, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"ignored {str(self.path)!r}: {self.reason}"


@dataclass(frozen=True)
class Part:
    """A readable batch file: its path, the cell keys it holds, and its table."""

    path: Path
    keys: tuple[str, ...]
    table: pa.Table


def environment() -> dict:
    """Python, platform and library versions (for the manifest)."""
    env = {"python": sys.version.split()[0], "platform": platform.platform(),
           "machine": platform.machine(), "cpu_count": os.cpu_count()}
    for dist in ("weightsynth", "jax", "jaxlib", "numpy", "pandas", "pyarrow", "dask",
                 "distributed"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = None
    return env


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SweepStore:
    """The folder of one sweep (or of several resumed runs of it)."""

    def __init__(self, out_dir: str | os.PathLike, *, create: bool = True):
        self.root = Path(out_dir)
        if not create:
            if not self.root.is_dir():
                raise FileNotFoundError(f"no sweep folder at {str(self.root)!r}")
            return
        try:
            for kind in _KINDS:
                (self.root / kind).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"cannot create sweep folder {str(self.root)!r}: "
                             f"{exc.strerror or exc}") from None
        if not os.access(self.root / "results", os.W_OK):
            raise ValueError(f"sweep folder {str(self.root)!r} is not writable")

    # -- reading ---------------------------------------------------------------------
    def scan(self, kind: str = "results") -> tuple[list[Part], list[BadFile]]:
        """Read every complete batch file of ``kind``; return (parts, ignored files)."""
        folder = self.root / kind
        parts: list[Part] = []
        bad: list[BadFile] = []
        if not folder.is_dir():
            return parts, bad
        for path in sorted(folder.iterdir()):
            if path.is_dir():
                continue
            if path.name.endswith(".tmp"):
                bad.append(BadFile(path, "partial file left by an interrupted write"))
                continue
            if not (path.name.startswith("part-") and path.suffix == ".parquet"):
                bad.append(BadFile(path, "not a sweep batch file (unexpected name)"))
                continue
            part = _read_part(path, kind)
            if isinstance(part, BadFile):
                bad.append(part)
            else:
                parts.append(part)
        return parts, bad

    def done_keys(self) -> tuple[set[str], list[BadFile]]:
        """Keys of the cells that a readable results file holds, and the ignored files."""
        parts, bad = self.scan("results")
        return {k for p in parts for k in p.keys}, bad

    # -- writing ---------------------------------------------------------------------
    def write_batch(self, kind: str, keys: list[str], records: list[dict]) -> Path:
        """Write one batch file atomically (temporary name, then rename); return its path."""
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        table = _to_table(records)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
                "cells": list(keys)}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               _META: json.dumps(meta).encode()})
        buf = io.BytesIO()
        pq.write_table(table, buf)
        path = self.root / kind / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        atomic_write_bytes(path, buf.getvalue())
        return path

    # -- one driver at a time -------------------------------------------------------
    @contextlib.contextmanager
    def lock(self):
        """Hold DIR's driver lock for the ``with`` block; ``ValueError`` if another holds it."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no driver lock (reads still deduplicate)
            yield
            return
        path = self.root / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown"
                raise ValueError(f"another sweep driver is writing to {str(self.root)!r} "
                                 f"({holder}); wait for it to finish or choose another "
                                 "output folder") from None
            except OSError:  # flock unsupported here (some network file systems)
                held = False
            if held:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} on {platform.node()} since {_now()}".encode(),
                          0)
            try:
                yield
            finally:
                if held:
                    os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing releases the flock

    # -- manifest --------------------------------------------------------------------
    def read_manifest(self) -> tuple[dict, BadFile | None]:
        """The manifest (a fresh one if absent); a corrupt one is reported and replaced."""
        path = self.root / MANIFEST
        fresh = {"format": FORMAT, "format_version": FORMAT_VERSION, "runs": []}
        if not path.exists():
            return fresh, None
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT or not isinstance(data.get("runs"), list):
                raise ValueError("not a weightsynth sweep manifest")
        except (ValueError, OSError, AttributeError) as exc:
            return fresh, BadFile(path, f"unreadable manifest, starting a new one ({exc})")
        return data, None

    def record_run(self, run: dict) -> None:
        """Add or update (same ``run_id``) a run entry in the manifest, atomically."""
        data, _ = self.read_manifest()
        runs = [r for r in data["runs"] if r.get("run_id") != run["run_id"]]
        data["runs"] = runs + [run]
        text = json.dumps(data, indent=2, sort_keys=True, default=str)
        atomic_write_bytes(self.root / MANIFEST, text.encode())


def new_run(protocol: str, config: dict | None, n_cells: int) -> dict:
    """A manifest entry for a run starting now."""
    return {"run_id": uuid.uuid4().hex, "started": _now(), "finished": None,
            "protocol": protocol, "config": config, "cells": n_cells,
            "weightsynth_version": __version__, "environment": environment()}


def finish_run(run: dict, summary: dict) -> dict:
    """The manifest entry ``run`` marked finished, with ``summary``."""
    return {**run, "finished": _now(), "summary": summary}


def _read_part(path: Path, kind: str) -> Part | BadFile:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        reason = " ".join(str(exc).split())[:200]
        return BadFile(path, f"unreadable Parquet (truncated or corrupt): {reason}")
    raw = (table.schema.metadata or {}).get(_META)
    try:
        meta = json.loads(raw)
        keys = tuple(meta["cells"])
        ok = meta.get("format") == FORMAT and meta.get("kind") == kind
    except (TypeError, ValueError, KeyError):
        ok = False
    if not ok:
        return BadFile(path, "Parquet file without weightsynth sweep metadata (foreign file)")
    if table.num_rows and "cell_key" not in table.column_names:
        return BadFile(path, "batch file without a cell_key column")
    return Part(path, keys, table)


def _to_table(records: list[dict]) -> pa.Table:
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame(
        {"cell_key": pd.Series([], dtype="string")})
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        for col in df.select_dtypes(include="object").columns:
            df[col] = [v if v is None or isinstance(v, str) else json.dumps(v, default=str)
                       for v in df[col]]
        return pa.Table.from_pandas(df, preserve_index=False)


def _warn(bad: list[BadFile]) -> None:
    for b in bad:
        warnings.warn(str(b), CorruptFileWarning, stacklevel=3)


def _dedupe(parts: list[Part]) -> pa.Table | None:
    """Concatenate parts, keeping each cell key's rows from the first part that lists it."""
    seen: set[str] = set()
    tables = []
    for part in parts:
        table = part.table
        dup = seen.intersection(part.keys)
        if dup and table.num_rows:
            hit = pc.is_in(table["cell_key"], value_set=pa.array(sorted(dup), pa.string()))
            table = table.filter(pc.invert(hit))
        seen.update(part.keys)
        tables.append(table.replace_schema_metadata(None))
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive")


def load_results_table(out_dir: str | os.PathLike) -> pa.Table:
    """All result rows of a sweep folder as a pyarrow Table, each cell once."""
    parts, bad = SweepStore(out_dir, create=False).scan("results")
    _warn(bad)
    table = _dedupe(parts)
    return table if table is not None else pa.table({"cell_key": pa.array([], pa.string())})


def load_results(out_dir: str | os.PathLike) -> pd.DataFrame:
    """All result rows of a sweep folder as a pandas DataFrame, each cell exactly once.

    Partial, corrupt or foreign files are ignored with a :class:`CorruptFileWarning`.
    """
    return load_results_table(out_dir).to_pandas()


def load_errors(out_dir: str | os.PathLike) -> pd.DataFrame:
    """Cells that failed and have not succeeded since: the latest error of each."""
    store = SweepStore(out_dir, create=False)
    done, bad = store.done_keys()
    parts, bad_err = store.scan("errors")
    _warn(bad + bad_err)
    table = _dedupe(list(reversed(parts)))
    if table is None or not table.num_rows:
        return pd.DataFrame(columns=["cell_key", "protocol", "params", "error_type",
                                     "message", "traceback", "time"])
    df = table.to_pandas()
    return df[~df["cell_key"].isin(done)].sort_values("time").reset_index(drop=True)
