"""Draw docs/figures/architecture.png: weightsynth's layers and the imports between them.

The arrows are read from the source, not drawn by hand: every module-level import of one
weightsynth module by another (``ast``, nothing is imported) becomes an arrow between their
layers (the command line's deferred imports included). Run from the repository root:

    python docs/make_architecture_figure.py
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "src" / "weightsynth"
LAYER_OF = {"_version": "support", "errors": "support", "_validation": "support",
            "_cache": "support", "_deprecation": "support", "_interrupt": "support",
            "__init__": "face"}
# layer -> (x, y, what it holds); higher layers sit higher. "support" (errors, validation,
# version) is the floor every layer stands on: its arrows are left out.
BOXES = {
    "cli": (3.6, 6.0, "cli.py\ncommand line: synthesize,\nsweep, reproduce"),
    "study": (3.6, 4.65, "study/\nthe paper's experiments,\nclaims, figures, report"),
    "estimators": (0.9, 4.65, "estimators/\nscikit-learn classifier\nand regressor"),
    "control": (0.9, 3.3, "control/\ngeneral indices and state\nequations; sweep, direct"),
    "baselines": (3.6, 3.3, "baselines/\nouter product, projection,\nStorkey; recall"),
    "engine": (6.3, 3.3, "engine/\ngrids of cells on Dask,\nresults in Parquet"),
    "core": (1.9, 1.85, "core/\nthe closed form: g, S, W*(t),\nprograms, J and J*"),
    "formats": (5.3, 1.85, "formats/\nthe program file\n(safetensors)"),
}
#: curvature of the arrows that would otherwise cross a box
BEND = {("study", "core"): 0.25, ("study", "formats"): -0.25, ("study", "control"): 0.1,
        ("study", "engine"): -0.1, ("cli", "engine"): -0.2, ("control", "formats"): 0.55,
        ("estimators", "core"): 0.45, ("estimators", "formats"): 0.0}


def _layer(parts: tuple[str, ...]) -> str:
    top = parts[1] if len(parts) > 1 else "__init__"
    return LAYER_OF.get(top, top)


def _edges() -> Counter:
    edges: Counter = Counter()
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        src = _layer(parts)
        if src == "face":  # the package face re-exports lazily; it is not a layer
            continue
        pkg = parts[:-1]
        tree = ast.parse(path.read_text())
        # module level only, but the command line loads each subcommand's layers lazily
        nodes = ast.walk(tree) if src == "cli" else tree.body
        for node in nodes:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg[: len(pkg) - node.level + 1]
                target = base + tuple((node.module or "").split(".")) if node.module else base
                if len(target) == 1 and node.names:  # ``from .. import x``
                    target = target + (node.names[0].name,)
                dst = _layer(target)
                if dst != src:
                    edges[src, dst] += 1
    return edges


def main() -> None:
    edges = _edges()
    fig, ax = plt.subplots(figsize=(9.0, 7.0))
    w, h = 2.2, 0.9
    patches = {}
    for name, (x, y, text) in BOXES.items():
        patches[name] = FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                       boxstyle="round,pad=0.05", zorder=2, lw=1.2,
                                       fc="#fbf1e0" if name == "engine" else "#e8f0fb",
                                       ec="#34495e")
        ax.add_patch(patches[name])
        ax.text(x, y, text, ha="center", va="center", fontsize=9, zorder=3)
    ax.add_patch(FancyBboxPatch((-0.25, 0.35), 7.7, 0.55, boxstyle="round,pad=0.05",
                                fc="#eeeeee", ec="#7f8c8d", lw=1.0, zorder=2))
    ax.text(3.6, 0.62, "errors, _validation, _version, _cache, _deprecation, _interrupt: "
            "used by every layer (arrows not drawn)", ha="center", va="center", fontsize=9,
            zorder=3)
    for src, dst in sorted(edges):
        if src not in BOXES or dst not in BOXES:
            continue
        (x0, y0, _), (x1, y1, _) = BOXES[src], BOXES[dst]
        ax.add_patch(FancyArrowPatch(
            (x0, y0), (x1, y1), patchA=patches[src], patchB=patches[dst], zorder=1,
            arrowstyle="-|>", mutation_scale=13, lw=1.1, shrinkA=2, shrinkB=2,
            color="#c0392b" if y1 > y0 else "#2c3e50",
            connectionstyle=f"arc3,rad={BEND.get((src, dst), 0.0)}"))
    ax.text(-0.25, 7.45, "weightsynth's layers. An arrow: the layer at its tail imports the "
            "one at its head\n(read from src/ by docs/make_architecture_figure.py). No arrow "
            "points up: a layer knows\nnothing of those above it; calls go down and their "
            "results come back up.", fontsize=9, va="top")
    ax.set_xlim(-0.4, 7.6)
    ax.set_ylim(0.2, 7.5)
    ax.axis("off")
    out = ROOT / "docs" / "figures" / "architecture.png"
    fig.savefig(out, dpi=100, bbox_inches="tight")
    print(f"wrote {out}; layer edges: {dict(edges)}")


if __name__ == "__main__":
    main()
