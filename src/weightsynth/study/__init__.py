"""The associative-memory study of the paper's Section 3: data, methods, protocols, claims.

Protocols return tidy records (no plotting here); :func:`run_study` runs them all and
writes the table, figures and report.
"""

from .config import METHOD_NAMES, StudyConfig, default_config, load_config, with_overrides
from .methods import METHODS, Recall, Task, run_method
from .protocols import time_grid
from .runner import PROTOCOLS, expand_grid, run_cells
from .stats import mean_ci, paired_difference, summarize

__all__ = [
    "METHODS",
    "METHOD_NAMES",
    "PROTOCOLS",
    "Recall",
    "StudyConfig",
    "Task",
    "default_config",
    "expand_grid",
    "load_config",
    "mean_ci",
    "paired_difference",
    "run_cells",
    "run_method",
    "summarize",
    "time_grid",
    "with_overrides",
]
