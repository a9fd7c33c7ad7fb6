"""weightsynth: weight-program synthesis for continuous-time networks by optimal control.

Implements Farotimi, Dembo & Kailath (NIPS 1989). See docs/derivation.md for the equations
that each function cites.
"""

from .activations import Activation, available_activations, get_activation, register_activation
from .errors import PrecisionWarning, ProgramFileError, SolveError
from .general import GeneralResult, direct_synthesize, sweep_synthesize
from .grid_program import GridProgram
from .index import IndexResult, evaluate_index, excess_cost, optimal_cost, performance_index
from .problem import (
    Index,
    Problem,
    custom_index,
    paper_index,
    terminal_correlation,
    terminal_squared_error,
)
from .program import ConstantProgram, Program, WeightProgram, load_program
from .retrieval import dense_memory_recall, discrete_recall, is_stable
from .rules import outer_product_rule, projection_rule, storkey_rule
from .solvers import SolverConfig
from .synthesis import synthesize

__version__ = "0.1.0"

#: scikit-learn estimators (issue 12), imported on first use so that `import weightsynth`
#: does not pay for scikit-learn.
_LAZY = {"SynthesisClassifier": "estimators", "SynthesisRegressor": "estimators",
         "estimators": None}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod = importlib.import_module(".estimators", __name__)
        return mod if _LAZY[name] is None else getattr(mod, name)
    raise AttributeError(f"module 'weightsynth' has no attribute {name!r}")


__all__ = [
    "GeneralResult",
    "GridProgram",
    "Index",
    "Problem",
    "custom_index",
    "direct_synthesize",
    "paper_index",
    "sweep_synthesize",
    "terminal_correlation",
    "terminal_squared_error",
    "Activation",
    "ConstantProgram",
    "IndexResult",
    "PrecisionWarning",
    "Program",
    "ProgramFileError",
    "SolveError",
    "SynthesisClassifier",
    "SynthesisRegressor",
    "SolverConfig",
    "WeightProgram",
    "available_activations",
    "evaluate_index",
    "excess_cost",
    "get_activation",
    "load_program",
    "optimal_cost",
    "outer_product_rule",
    "projection_rule",
    "storkey_rule",
    "discrete_recall",
    "dense_memory_recall",
    "is_stable",
    "performance_index",
    "register_activation",
    "synthesize",
]
