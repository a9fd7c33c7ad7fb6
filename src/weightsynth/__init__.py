"""weightsynth: weight-program synthesis for continuous-time networks by optimal control.

Implements Farotimi, Dembo & Kailath (NIPS 1989). See docs/derivation.md for the equations
that each function cites and docs/architecture.md for the layers:

* ``core``: the paper's closed form (activations, dynamics, synthesis, programs, the index);
* ``control``: general indices and state equations, solved iteratively;
* ``baselines``: the classical and modern learning rules and recall dynamics;
* ``formats``: the saved-program file;
* ``engine``: grids of experiments on Dask, results in Parquet;
* ``study``: the paper's experiments and the report; ``cli``: the command line.

The names below are the public API. They load lazily, so ``import weightsynth`` does not
import JAX until a name that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

# public name -> module (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    # core: the paper's closed form
    "Activation": ".core.activations",
    "available_activations": ".core.activations",
    "get_activation": ".core.activations",
    "register_activation": ".core.activations",
    "synthesize": ".core.synthesis",
    "Program": ".core.program",
    "WeightProgram": ".core.optimal_program",
    "ConstantProgram": ".core.program",
    "load_program": ".core.program",
    "IndexResult": ".core.cost",
    "evaluate_index": ".core.cost",
    "excess_cost": ".core.cost",
    "optimal_cost": ".core.cost",
    "performance_index": ".core.cost",
    "SolverConfig": ".core.ode",
    # errors
    "AccuracyWarning": ".errors",
    "PrecisionWarning": ".errors",
    "ProgramFileError": ".errors",
    "SolveError": ".errors",
    # control: general indices and state equations
    "Problem": ".control.problem",
    "Index": ".control.indices",
    "custom_index": ".control.indices",
    "paper_index": ".control.indices",
    "terminal_correlation": ".control.indices",
    "terminal_squared_error": ".control.indices",
    "GeneralResult": ".control.solvers",
    "direct_synthesize": ".control.solvers",
    "sweep_synthesize": ".control.solvers",
    "GridProgram": ".control.grid_program",
    "feedback_synthesize": ".control.feedback",
    "FeedbackProgram": ".control.feedback_program",
    # baselines
    "outer_product_rule": ".baselines.rules",
    "projection_rule": ".baselines.rules",
    "storkey_rule": ".baselines.rules",
    "discrete_recall": ".baselines.retrieval",
    "dense_memory_recall": ".baselines.retrieval",
    "is_stable": ".baselines.retrieval",
    # scikit-learn estimators (docs/estimators.md)
    "SynthesisClassifier": ".estimators",
    "SynthesisRegressor": ".estimators",
}
# public submodules reachable as attributes (ws.rules, ws.retrieval, ...)
_SUBMODULES: dict[str, str] = {
    "rules": ".baselines.rules",
    "retrieval": ".baselines.retrieval",
    "core": ".core",
    "control": ".control",
    "baselines": ".baselines",
    "formats": ".formats",
    "engine": ".engine",
    "study": ".study",
    "estimators": ".estimators",
}

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULES[name], __name__)
    else:
        raise AttributeError(f"module 'weightsynth' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what type checkers and IDEs see; nothing runs at import
    from .baselines import retrieval as retrieval
    from .baselines import rules as rules
    from .baselines.retrieval import dense_memory_recall, discrete_recall, is_stable
    from .baselines.rules import outer_product_rule, projection_rule, storkey_rule
    from .control.feedback import feedback_synthesize
    from .control.feedback_program import FeedbackProgram
    from .control.grid_program import GridProgram
    from .control.indices import (
        Index,
        custom_index,
        paper_index,
        terminal_correlation,
        terminal_squared_error,
    )
    from .control.problem import Problem
    from .control.solvers import GeneralResult, direct_synthesize, sweep_synthesize
    from .core.activations import (
        Activation,
        available_activations,
        get_activation,
        register_activation,
    )
    from .core.cost import (
        IndexResult,
        evaluate_index,
        excess_cost,
        optimal_cost,
        performance_index,
    )
    from .core.ode import SolverConfig
    from .core.optimal_program import WeightProgram
    from .core.program import ConstantProgram, Program, load_program
    from .core.synthesis import synthesize
    from .errors import AccuracyWarning, PrecisionWarning, ProgramFileError, SolveError
    from .estimators import SynthesisClassifier, SynthesisRegressor
