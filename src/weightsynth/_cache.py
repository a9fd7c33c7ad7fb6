"""JAX's persistent compilation cache, in the user's cache folder.

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
"""

from __future__ import annotations

import os
from pathlib import Path

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
    import jax

    folder = Path(path) if path is not None else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder


def enable_default() -> Path | None:
    """What importing ``weightsynth.core`` does: the cache unless the user chose otherwise."""
    import jax

    setting = os.environ.get(ENV)
    if setting is not None and setting.strip().lower() in _OFF:
        return None
    if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    return enable_compilation_cache(setting or None)
