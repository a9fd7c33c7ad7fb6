"""Deprecation paths for public signatures that changed (warn, then keep working)."""

from __future__ import annotations

import functools
import inspect
import warnings


def positional_deprecated(*old_names: str):
    """Let callers pass, positionally and in their old order, parameters that are now
    keyword-only; such calls still work but warn with a ``DeprecationWarning``.

    ``old_names`` are the parameters as they used to follow the required positional ones,
    e.g. ``("beta", "t1", "t0")`` for ``synthesize(inputs, targets, beta, t1, t0)``.
    """

    def wrap(fn):
        n_required = sum(
            p.kind is p.POSITIONAL_OR_KEYWORD for p in inspect.signature(fn).parameters.values()
        )

        @functools.wraps(fn)
        def call(*args, **kwargs):
            extra = args[n_required:]
            if extra:
                if len(extra) > len(old_names):
                    raise TypeError(f"{fn.__name__}() takes {n_required} positional arguments "
                                    f"but {len(args)} were given")
                names = old_names[: len(extra)]
                clash = [k for k in names if k in kwargs]
                if clash:
                    raise TypeError(f"{fn.__name__}() got multiple values for {clash[0]!r}")
                warnings.warn(
                    f"passing {', '.join(names)} to {fn.__name__}() by position is deprecated; "
                    f"pass them by keyword ({', '.join(f'{k}=...' for k in names)})",
                    DeprecationWarning, stacklevel=2,
                )
                kwargs.update(zip(names, extra, strict=True))
            return fn(*args[:n_required], **kwargs)

        return call

    return wrap
