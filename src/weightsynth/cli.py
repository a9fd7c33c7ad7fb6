"""Command-line interface: ``weightsynth --help``.

Entry points set JAX's x64 flag (library modules never do). Bad options exit with code 2
and a one-line message.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Synthesize optimal weight programs (Farotimi, Dembo & Kailath 1989) and study them.",
)


@app.callback()
def _root() -> None:
    """weightsynth command line."""


def _enable_x64() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def demo(
    n: int = typer.Option(64, min=1, help="Neurons."),
    L: int = typer.Option(8, "--L", min=1, help="Stored patterns."),
    beta: float = typer.Option(0.5, help="Weight penalty beta > 0."),
    t1: float = typer.Option(1.0, help="Final time."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Synthesize a program for random patterns and check J against the exact optimum J*."""
    _enable_x64()
    import numpy as np

    import weightsynth as ws

    rng = np.random.default_rng(seed)
    theta = np.sign(rng.standard_normal((L, n)))
    flips = np.where(rng.random((L, n)) < 0.1, -1.0, 1.0)
    phi = 0.5 * theta * flips
    try:
        prog = ws.synthesize(phi, theta, beta=beta, t1=t1)
        res = ws.evaluate_index(prog, phi, theta)
    except ValueError as exc:
        fail(str(exc))
    acc = float(np.mean(np.sign(prog.recall(phi)) == theta))
    typer.echo(f"n={n} L={L} beta={beta} t1={t1}: J={res.J:.12g} J*={res.J_star:.12g} "
               f"rel.err={abs(res.J - res.J_star) / abs(res.J_star):.2e} bit accuracy={acc:.3f}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
