"""The paper's closed form: activations, the network's and S's vector fields, the ODE
plumbing, weight programs, the optimal synthesis and the index J (docs/derivation.md
sections 1-5).

Importing this layer turns on JAX's persistent compilation cache in the user's cache folder
unless the user chose otherwise (:mod:`weightsynth._cache`): compiling the solvers costs
seconds, which a second process then loads from disk.
"""

from .._cache import enable_default as _enable_compilation_cache

_enable_compilation_cache()
