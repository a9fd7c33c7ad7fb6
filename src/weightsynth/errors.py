"""Exceptions and warnings raised by weightsynth.

Every user-facing error is a ``ValueError`` (or one of the documented subclasses below),
and its message names the offending argument and value.
"""

from __future__ import annotations


class SolveError(ValueError):
    """An ODE solve failed: the state went non-finite, or the step size collapsed.

    Attributes
    ----------
    time:
        The last time up to which the solution was still finite (the blow-up happened
        after it), or ``None`` when unknown.
    """

    def __init__(self, message: str, time: float | None = None):
        super().__init__(message)
        self.time = time


class ProgramFileError(ValueError):
    """A saved program file is missing, truncated, corrupted, or not a weightsynth file."""


class PrecisionWarning(UserWarning):
    """float64 data was given but JAX's x64 mode is off, so the work runs in float32."""


class AccuracyWarning(UserWarning):
    """A result may miss its tolerance (the message says by how much and what to change)."""
