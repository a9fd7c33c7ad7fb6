"""The on-disk caches of compiled code: JAX's compilation cache and exported kernels.

Compiling the solvers takes seconds; the cache keeps the compiled programs on disk so that
a second process (a rerun, a Dask worker, the next test run) loads them instead. weightsynth
turns it on when its computational layers are first imported (``weightsynth.core``, which
``import weightsynth`` alone does not load), with three exceptions: JAX already has a cache
folder (``jax_compilation_cache_dir`` or ``JAX_COMPILATION_CACHE_DIR``: the user's choice
stands), ``WEIGHTSYNTH_COMPILATION_CACHE=off`` (or ``0``, ``false``, ``no``) in the
environment, or a folder that cannot be created. ``WEIGHTSYNTH_COMPILATION_CACHE=/some/dir``
picks the folder; the default is ``$XDG_CACHE_HOME/weightsynth/jax`` (``~/.cache/...``).

On a cluster, point every machine's workers at a folder of their own or at one shared
folder (the cache is safe to share between processes): set the variable in the workers'
environment.

The compilation cache skips XLA's compilation, but each process must still trace and lower
every solver to find its entry (for a diffrax solve, 0.3-0.5 s). :func:`persistent_jit`
skips that too: the first process exports each kernel it traces (``jax.export``, StableHLO
in a file under ``weightsynth-exported/`` of the same folder), and later processes load and
call the export. An export is found by a key of everything that shapes the trace: the
function, the structure and static values of its arguments, their shapes and dtypes, the
source files of weightsynth and the versions of JAX, jaxlib, diffrax and equinox. The same
switch turns both caches off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import hashlib
import importlib.metadata
import os
import time
from pathlib import Path

import equinox as eqx
import jax
from jax import export

from ._files import write_atomically

ENV = "WEIGHTSYNTH_COMPILATION_CACHE"
_OFF = {"0", "off", "false", "no", "none", ""}


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/weightsynth/jax``, else ``~/.cache/weightsynth/jax``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "weightsynth" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache in ``path`` (default
    :func:`default_cache_dir`); return the folder, or None if it cannot be created.

    Every compilation is stored, the small eager ones too (dozens of 0.1 s compiles add up
    to seconds); nothing else of JAX's configuration
    changes.
    """
    folder = Path(path) if path is not None else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder


def switched_off() -> bool:
    """Whether ``WEIGHTSYNTH_COMPILATION_CACHE`` turns both caches off."""
    setting = os.environ.get(ENV)
    return setting is not None and setting.strip().lower() in _OFF


def enable_default() -> Path | None:
    """What importing ``weightsynth.core`` does: the cache unless the user chose otherwise."""
    if switched_off():
        return None
    if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    return enable_compilation_cache(os.environ.get(ENV) or None)


# ---- exported kernels -------------------------------------------------------------------
EXPORT_FOLDER = "weightsynth-exported"


def persistent_jit(fn):
    """``eqx.filter_jit(fn)`` whose traced and lowered form is kept on disk across processes.

    Array leaves of the arguments are traced, everything else is static, as with
    ``eqx.filter_jit``. The first call of a new key exports the kernel and writes it
    (atomically) to the export folder; later calls in this process, and first calls in the
    next one, call the export, whose XLA compilation the compilation cache then supplies.
    Plain ``eqx.filter_jit`` runs instead when the caches are off, inside an outer trace,
    when the kernel involves code outside weightsynth (whose changes the key would miss: a
    user's Program subclass, a registered activation) or a static value without a stable
    description (an object known only by its address), or when the kernel cannot be
    exported (a host callback, such as a progress bar) or its results are not plain
    containers of arrays. A file that fails to load is exported anew.
    """
    jitted = {opts: eqx.filter_jit(fn, compiler_options=dict(opts) or None)
              for opts in (_DEFAULT, _FAST)}
    calls: dict[str, object] = {}  # key -> jitted call of the export, or None: use ``jitted``

    @functools.wraps(fn)
    def call(*args, **kwargs):
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        traced = [eqx.is_array(x) for x in leaves]
        arrays = [x for x, t in zip(leaves, traced, strict=True) if t]
        if any(isinstance(x, jax.core.Tracer) for x in arrays):  # the outer jit compiles
            return jitted[_DEFAULT](*args, **kwargs)
        opts = compile_options(arrays)
        folder = _export_folder()
        if folder is None:
            return jitted[opts](*args, **kwargs)
        key = _export_key(fn, treedef, [x for x, t in zip(leaves, traced, strict=True)
                                        if not t], arrays)
        if key is None:
            return jitted[opts](*args, **kwargs)
        if key not in calls:
            calls[key] = _load_or_export(fn, key, folder, treedef, leaves, traced, arrays,
                                         opts)
        exported = calls[key]
        return jitted[opts](*args, **kwargs) if exported is None else exported(*arrays)

    def cache_size() -> int:
        """How many compiled versions exist in this process (as ``jax.jit``'s)."""
        exported = sum(f._cache_size() for f in calls.values() if f is not None)
        return exported + sum(j._cached._cache_size() for j in jitted.values())

    call.__wrapped__ = fn
    call._cache_size = cache_size
    return call


#: XLA options for small kernels (:func:`compile_options`), as a hashable tuple of pairs
_FAST: tuple = (("xla_cpu_use_fusion_emitters", False),)
_DEFAULT: tuple = ()
#: array arguments of at most this many bytes in all make a kernel "small"
SMALL_BYTES = 2**24


def compile_options(arrays) -> tuple:
    """XLA options for a kernel on these array arguments: none, except for small kernels
    on the CPU, which XLA:CPU's older loop emitters compile in about half the time.

    There compiling dominates: the README's example (n = 64, L = 8) compiles five kernels
    for 4 s and runs them for 0.1 s. The newer fusion emitters make large elementwise
    work faster (a 200-step solve at n = 2048, L = 256 ran 13% slower without them), so
    kernels on more than :data:`SMALL_BYTES` keep XLA's defaults. The choice depends on
    the shapes alone, so one kernel always compiles the same way and gives the same digits.
    """
    if jax.default_backend() != "cpu":
        return _DEFAULT
    size = sum(x.size * x.dtype.itemsize for x in arrays)
    return _FAST if size <= SMALL_BYTES else _DEFAULT


def _export_folder() -> Path | None:
    if switched_off():
        return None
    base = jax.config.jax_compilation_cache_dir
    if not base or "://" in str(base):
        return None
    return Path(base) / EXPORT_FOLDER


@functools.cache
def _environment() -> str:
    """What every key shares: weightsynth's source files, the versions that shape a trace."""
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    versions = []
    for dist in ("jax", "jaxlib", "diffrax", "equinox"):
        try:
            versions.append(f"{dist}={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist}=?")
    return digest.hexdigest() + ";" + ";".join(versions)


#: the modules whose source files the key covers (:func:`_environment`). Code from anywhere
#: else (a user's Program subclass, a registered activation) could change between processes
#: without changing the key, so a kernel that involves it runs through plain jit.
_SOURCES: tuple[str, ...] = ("weightsynth.",)


def covered(obj) -> bool:
    """Whether the key covers ``obj``'s code: it is defined in weightsynth (or builtins)."""
    module = getattr(obj, "__module__", None) or ""
    return module == "builtins" or module.startswith(_SOURCES)


def _describe(x) -> str | None:
    """A description of a static value that is the same in every process, or None.

    An object may describe itself by an ``export_description()`` method (None: it cannot).
    """
    if x is None or isinstance(x, (bool, int, float, str, bytes)):
        return f"{type(x).__name__}:{x!r}"
    if isinstance(x, (tuple, list, frozenset)):
        parts = [_describe(v) for v in (sorted(x, key=repr) if isinstance(x, frozenset) else x)]
        return None if None in parts else f"{type(x).__name__}({','.join(parts)})"
    if not covered(x if isinstance(x, type) else type(x)):
        return None
    if isinstance(x, type):
        return f"type:{x.__module__}.{x.__qualname__}"
    name = f"{type(x).__module__}.{type(x).__qualname__}"
    own = getattr(x, "export_description", None)
    if callable(own):
        text = own()
        return None if text is None else f"{name}:{text}"
    if isinstance(x, enum.Enum):
        return f"{name}.{x.name}"
    if dataclasses.is_dataclass(x) and type(x).__dataclass_params__.frozen:
        parts = [_describe(getattr(x, f.name)) for f in dataclasses.fields(x)]
        return None if None in parts else f"{name}({','.join(parts)})"
    return None


def _node_types(treedef):
    data = treedef.node_data()
    if data is not None:
        yield data[0]
    for child in treedef.children():
        yield from _node_types(child)


def _export_key(fn, treedef, statics, arrays) -> str | None:
    structure = str(treedef)
    if not covered(fn) or " at 0x" in structure:  # " at 0x": an object known by address
        return None
    if not all(covered(t) for t in _node_types(treedef)):
        return None
    described = [_describe(x) for x in statics]
    if None in described:
        return None
    avals = [(tuple(x.shape), str(jax.dtypes.canonicalize_dtype(x.dtype)),
              bool(getattr(x, "weak_type", False))) for x in arrays]
    config = (jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision,
              jax.default_backend(), os.environ.get("EQX_ON_ERROR"))
    text = repr((fn.__module__, fn.__qualname__, structure, described, avals, config,
                 _environment()))
    return hashlib.sha256(text.encode()).hexdigest()


def _load_or_export(fn, key, folder: Path, treedef, leaves, traced, arrays, opts):
    """The jitted call of the export under ``key``: read from ``folder``, or exported now and
    written there; None if this kernel cannot be exported."""
    prefix = _environment_tag()
    path = folder / f"{prefix}-{key}.stablehlo"
    specs = [jax.ShapeDtypeStruct(x.shape, jax.dtypes.canonicalize_dtype(x.dtype),
                                  weak_type=bool(getattr(x, "weak_type", False)))
             for x in arrays]
    exported = _read(path, specs)
    if exported is None:
        def flat(*values):
            it = iter(values)
            full = [next(it) if t else x for x, t in zip(leaves, traced, strict=True)]
            a, k = jax.tree_util.tree_unflatten(treedef, full)
            return fn(*a, **k)

        try:
            data = export.export(jax.jit(flat))(*specs).serialize()
        except Exception:  # noqa: BLE001 - host callbacks, custom result types: plain jit
            return None
        _write_atomically(folder, path, data)
        _prune(folder, prefix)
        # called as read back, as the next process will: a file does not keep weak types,
        # and results that differ in them would key the next kernel differently
        exported = export.deserialize(bytearray(data))
    return jax.jit(exported.call, compiler_options=dict(opts) or None)


def _read(path: Path, specs):
    """The export in ``path`` if it loads and takes arguments of ``specs``' shapes and
    dtypes, else None (a missing, damaged or foreign file). A read marks the file used."""
    try:
        exported = export.deserialize(bytearray(path.read_bytes()))
    except Exception:  # noqa: BLE001 - missing, damaged or foreign: export again
        return None
    takes = [(tuple(a.shape), a.dtype) for a in exported.in_avals]
    if takes != [(tuple(s.shape), s.dtype) for s in specs]:
        return None
    with contextlib.suppress(OSError):
        os.utime(path)
    return exported


#: exports of another environment (other sources or versions) unused for this long are
#: deleted when this one writes: every edit of weightsynth's sources starts a new set
STALE_DAYS = 7


@functools.cache
def _environment_tag() -> str:
    return hashlib.sha256(_environment().encode()).hexdigest()[:16]


def _prune(folder: Path, keep: str) -> None:
    cutoff = time.time() - STALE_DAYS * 86400
    for old in folder.glob("*.stablehlo"):
        with contextlib.suppress(OSError):
            if not old.name.startswith(keep + "-") and old.stat().st_mtime < cutoff:
                old.unlink()


def _write_atomically(folder: Path, path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`weightsynth._files.write_atomically`:
    readable to the others sharing the folder, as the umask allows); on a read-only or
    full disk, write nothing (the next process exports again)."""
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)
