"""Command-line interface: ``weightsynth --help``.

Entry points set JAX's x64 flag (library modules never do). Bad options exit with code 2
and a one-line message.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from pathlib import Path


def _exit_while_importing(signum, frame):  # pragma: no cover - timing dependent
    os.write(2, b"interrupted\n")
    os._exit(130)


def _guard_imports():
    """Ctrl-C while this module's imports run: one line and exit code 130, not a traceback
    from inside an import. Returns the handler to restore afterwards (or None)."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return None
    try:
        return signal.signal(signal.SIGINT, _exit_while_importing)
    except ValueError:  # not the main thread
        return None


_PREVIOUS_SIGINT = _guard_imports()
import typer  # noqa: E402

if _PREVIOUS_SIGINT is not None:
    signal.signal(signal.SIGINT, _PREVIOUS_SIGINT)

#: set once a command has printed its "interrupted" line (so main() does not repeat it)
_SAID = {"interrupted": False}


def _interruptible(message):
    """Ctrl-C anywhere in the command (imports, start-up, the run): print ``message(**kw)``
    as one line on stderr and exit with code 130."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            from . import _interrupt

            try:
                with _interrupt.watching(exit_message=message(**kwargs)):
                    out = fn(*args, **kwargs)
                    _interrupt.check()  # a Ctrl-C that a GC callback swallowed
                return out
            except KeyboardInterrupt:
                typer.echo(message(**kwargs), err=True)
                _SAID["interrupted"] = True
                raise typer.Exit(code=130) from None

        return run

    return wrap

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Synthesize optimal weight programs (Farotimi, Dembo & Kailath 1989) and study them.",
)


def _show_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"weightsynth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the installed version and exit."),
) -> None:
    """weightsynth command line."""


def _enable_x64() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
@_interruptible(lambda **_: "interrupted")
def demo(
    n: int = typer.Option(64, min=1, metavar="INT", help="Neurons."),
    L: int = typer.Option(8, "--L", min=1, metavar="INT", help="Stored patterns."),
    beta: float = typer.Option(0.5, metavar="FLOAT", help="Weight penalty beta > 0."),
    t1: float = typer.Option(1.0, metavar="FLOAT", help="Final time."),
    seed: int = typer.Option(0, metavar="INT", help="Random seed."),
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


@app.command()
@_interruptible(lambda out, **_: f"interrupted: finished cells are saved in {out!r}; rerun "
                "the same command to complete the sweep")
def sweep(
    config: Path = typer.Argument(  # noqa: B008 - typer's way to declare an argument
        ..., metavar="CONFIG", dir_okay=False,
        help="Sweep config (TOML): protocol, [grid], [fixed]."),
    out: str = typer.Option(..., "--out", metavar="DIR",
                            help="Results folder; rerun to resume."),
    scheduler: str = typer.Option(None, metavar="ADDRESS",
        help="Dask scheduler address, e.g. tcp://host:8786 "
             "(default: a local cluster)."),
    workers: int = typer.Option(None, min=1, metavar="N",
        help="Local cluster workers (default: cores)."),
    connect_timeout: float = typer.Option(10.0, min=0.1, metavar="SECONDS",
        help="Seconds to reach --scheduler."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Run a grid of experiment cells on Dask; results go to OUT/results as Parquet.

    Exit code 0 when every cell is done, 1 when some cells failed (see OUT/errors), 2 on
    bad input. Interrupt with Ctrl-C and rerun the same command to finish the sweep.
    """
    import warnings

    from .engine.config import load_sweep_config
    from .engine.results import CorruptFileWarning
    from .engine.sweep import run_sweep

    _enable_x64()
    try:
        cfg = load_sweep_config(config)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CorruptFileWarning)
            summary = run_sweep(cfg.protocol, cfg.cells(), out, scheduler=scheduler,
                                workers=workers, batch_size=cfg.batch_size or 64,
                                progress=progress, config=cfg.as_dict(),
                                connect_timeout=connect_timeout)
    except ValueError as exc:
        fail(" ".join(str(exc).split()))
    for bad in summary.bad_files:
        typer.echo(f"warning: {bad}", err=True)
    typer.echo(summary.line())
    for line in summary.error_lines():
        typer.echo(line, err=True)
    if not summary.ok:
        raise typer.Exit(code=1)


_LIST_OPTS = {"n": int, "loads": float, "noise": float, "beta": float, "t1": float,
              "methods": str}


def _study_overrides(raw: dict) -> dict:
    """Parse comma-list CLI overrides ("0.05,0.1") into config values."""
    out = {}
    for key, text in raw.items():
        if text is None:
            continue
        if key == "seeds":
            parts = [text]
        else:
            parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            fail(f"--{key} is empty")
        kind = _LIST_OPTS.get(key, int)
        try:
            vals = [kind(p) for p in parts]
        except ValueError:
            fail(f"--{key} must be a comma list of {kind.__name__} values, got {text!r}")
        out[key] = vals[0] if key == "seeds" else vals
    return out


def _writable_dir(out: str):
    import tempfile
    from pathlib import Path

    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        fail(f"--out {out!r} is not a writable folder: {exc.strerror or exc}")
    return path


@app.command()
@_interruptible(lambda out, **_: "interrupted: finished cells are saved in "
                f"{os.path.join(out, 'sweep')!r}; rerun the same command to complete the study")
def reproduce(
    out: str = typer.Option(..., "--out", metavar="DIR",
                            help="Output folder (created if missing)."),
    quick: bool = typer.Option(False, "--quick", help="Small n, few seeds: 67 s measured on 2 "
                               "idle cores with a warm compilation cache, 15 min at load 12."),
    seed: str = typer.Option(None, metavar="INT", help="Base random seed (default 0)."),
    config: str = typer.Option(None, "--config", metavar="FILE.toml",
                               help="TOML file of study parameters."),
    n: str = typer.Option(None, metavar="LIST", help="Neurons, comma list (e.g. 100)."),
    loads: str = typer.Option(None, metavar="LIST", help="Loads K/n, comma list (e.g. 0.05,0.14)."),
    noise: str = typer.Option(None, metavar="LIST",
        help="Bit-flip probabilities in [0, 0.5], comma list."),
    beta: str = typer.Option(None, metavar="LIST", help="Weight penalties beta > 0, comma list."),
    t1: str = typer.Option(None, metavar="LIST", help="Final times, comma list."),
    seeds: str = typer.Option(None, metavar="INT", help="Number of seeds per setting."),
    methods: str = typer.Option(None, metavar="LIST",
        help="Methods, comma list: optimal, outer_continuous, "
             "outer_discrete, projection, storkey, dense, "
             "general-correlation, general-squared_error."),
    scheduler: str = typer.Option(None, metavar="ADDRESS",
        help="Dask scheduler address, e.g. tcp://host:8786 "
             "(default: a local cluster)."),
    workers: int = typer.Option(None, min=0, metavar="N",
        help="Local cluster workers (default: cores); "
             "0 runs every cell in this process, without Dask."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Run the paper's study; write figures (PNG, SVG), results.parquet and report.html.

    The grid runs on the Dask sweep engine (as 'weightsynth sweep'); finished cells are
    kept in OUT/sweep, so rerunning the same command resumes. Exit code 1 if some cells
    failed (the report is still written from the others), 2 on bad input.
    Precedence: embedded defaults (--quick picks the quick ones) < --config <
    options. The same seed gives the same table.
    """
    from .study.config import default_config, load_config, with_overrides

    raw = dict(n=n, loads=loads, noise=noise, beta=beta, t1=t1, seeds=seeds, methods=methods,
               seed=seed)
    overrides = _study_overrides(raw)
    try:
        cfg = load_config(config, quick=quick) if config else default_config(quick)
        cfg = with_overrides(cfg, overrides)
    except ValueError as exc:
        fail(" ".join(str(exc).split()))
    if scheduler is not None and workers is not None:
        fail("--workers sets the size of the local cluster; with --scheduler, start the "
             "workers on the cluster")
    path = _writable_dir(out)
    _enable_x64()
    from .study.study import run_study

    try:
        res = run_study(cfg, path, progress=progress, engine=workers != 0,
                        scheduler=scheduler, workers=workers)
    except ValueError as exc:
        fail(" ".join(str(exc).split()))
    for s in res["summaries"]:
        typer.echo(s.line())
        for line in s.error_lines():
            typer.echo(line, err=True)
    typer.echo(f"wrote {path / 'report.html'} ({len(res['table'])} rows, "
               f"{res['seconds']:.0f} s)")
    for row in res["claims"].itertuples(index=False):
        typer.echo(f"  [{row.status}] {row.claim}")
    if len(res["errors"]):
        typer.echo(f"{len(res['errors'])} cells failed (listed in the report; tracebacks "
                   f"in {str(path / 'sweep')!r}/<protocol>/errors)", err=True)
        raise typer.Exit(code=1)


def main() -> None:
    """Console-script entry point.

    Ctrl-C gives one line and exit code 130 wherever it lands: commands print their own
    line; typer turns an interrupt outside them (while parsing options) into a silent exit
    130, which gets the plain line here.
    """
    try:
        app()
    except KeyboardInterrupt:
        _say_interrupted()
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 130:
            _say_interrupted()
        raise
    finally:  # the command is over: a Ctrl-C while Python shuts down changes nothing
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _say_interrupted() -> None:
    if not _SAID["interrupted"]:
        _SAID["interrupted"] = True
        typer.echo("interrupted", err=True)


if __name__ == "__main__":
    main()
