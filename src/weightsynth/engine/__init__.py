"""The sweep engine: grids of cells run on Dask, tidy records appended to a Parquet store.

Knows nothing of the study: a protocol is any function ``protocol(**cell) -> list[dict]``,
found by name through the ``weightsynth.protocols`` entry points, by ``"module:function"``,
or passed directly (docs/sweeps.md).

* ``config``: sweep configs (TOML), cells and their stable keys;
* ``results``: the store (Parquet parts, manifest, errors table, the driver's lock);
* ``sweep``: the driver (``run_sweep``) and the local cluster.
"""

from .config import (
    SweepConfig,
    available_protocols,
    cell_key,
    load_sweep_config,
    parse_sweep_config,
    register_protocol,
)
from .results import CorruptFileWarning, SweepStore
from .sweep import SweepError, SweepSummary, load_errors, load_results, local_cluster, run_sweep

__all__ = [
    "CorruptFileWarning",
    "SweepConfig",
    "SweepError",
    "SweepStore",
    "SweepSummary",
    "available_protocols",
    "cell_key",
    "load_errors",
    "load_results",
    "local_cluster",
    "parse_sweep_config",
    "load_sweep_config",
    "register_protocol",
    "run_sweep",
]
