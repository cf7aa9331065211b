"""Readable results: rate-distortion and perception-distortion plots and an offline HTML page."""

from __future__ import annotations

import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from innrsic.atomic import write_bytes_atomic


def plot_rate_distortion(
    curves: Mapping[str, Sequence[Mapping[str, float]]],
    metrics: Sequence[tuple[str, str]],
    path: str | os.PathLike[str],
    title: str = "",
) -> None:
    """One panel per (metric key, axis label); one line per curve name, bpp on the x axis.

    Each curve is a sequence of points (dicts with "bpp" and the metric keys), plotted in
    order of bpp. Points whose metric is missing or not finite are left out of that panel.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
    for axis, (key, label) in zip(axes[0], metrics, strict=True):
        for name, points in curves.items():
            pairs = sorted((p["bpp"], p[key]) for p in points if key in p and np.isfinite(p[key]))
            if pairs:
                xs, ys = zip(*pairs, strict=True)
                axis.plot(xs, ys, marker="o", label=name)
        axis.set_xlabel("bits per pixel")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
        if axis.has_data():
            axis.legend(fontsize=8)
    _write_figure(fig, path, title)


def plot_perception_distortion(
    panels: Mapping[str, Sequence[Mapping[str, Any]]],
    metrics: Sequence[tuple[str, str]],
    path: str | os.PathLike[str],
    title: str = "",
) -> None:
    """Perception-distortion planes: PSNR (x) against each (metric key, axis label), one row
    per metric and one column per panel (e.g. a codec spec).

    Each point is a dict with "label", "psnr" and metric keys; points with a "line" are joined
    per line in order of "temperature" (each annotated ``T=<t>``), the others are drawn as
    single markers ("marker", default "o"). A label keeps its colour across panels; points
    whose values are missing or not finite are left out.
    """
    plt = _pyplot()
    names = list(dict.fromkeys(str(p.get("line") or p["label"]) for ps in panels.values()
                               for p in ps))
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    fig, axes = plt.subplots(len(metrics), len(panels), squeeze=False,
                             figsize=(5.0 * len(panels), 4.2 * len(metrics)))
    for column, (panel, points) in enumerate(panels.items()):
        for row, (key, label) in enumerate(metrics):
            axis = axes[row][column]
            drawn = [p for p in points if _finite(p.get("psnr")) and _finite(p.get(key))]
            lines: dict[str, list[Mapping[str, Any]]] = {}
            for point in drawn:
                if point.get("line"):
                    lines.setdefault(str(point["line"]), []).append(point)
                else:
                    axis.scatter(point["psnr"], point[key], marker=point.get("marker", "o"),
                                 s=55, color=colours[str(point["label"])], zorder=3,
                                 label=str(point["label"]))
            for name, sweep in lines.items():
                sweep = sorted(sweep, key=lambda p: float(p.get("temperature") or 0.0))
                axis.plot([p["psnr"] for p in sweep], [p[key] for p in sweep], marker=".",
                          color=colours[name], label=f"{name} (T sweep)")
                for p in sweep:
                    axis.annotate(f"T={float(p.get('temperature') or 0.0):g}",
                                  (p["psnr"], p[key]), fontsize=7, xytext=(3, 3),
                                  textcoords="offset points")
            axis.set_xlabel("PSNR (dB, higher is better)")
            axis.set_ylabel(label)
            axis.set_title(panel, fontsize=9)
            axis.grid(True, alpha=0.3)
            if axis.has_data():
                axis.legend(fontsize=7)
    _write_figure(fig, path, title)


def _pyplot() -> Any:
    """`matplotlib.pyplot` on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _write_figure(fig: Any, path: str | os.PathLike[str], title: str | None) -> None:
    """Title, lay out and write `fig` as a PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def html_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """An HTML table of `rows` restricted to `columns`; floats shown with 4 decimals."""

    def cell(value: object) -> str:
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        return f"<td>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell(r.get(c, "")) for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_figure_grid(items: Sequence[tuple[str, str]]) -> str:
    """Side-by-side images: (relative image path, caption) pairs, shown pixel-exact at 2x."""
    cells = "".join(
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for src, caption in items
    )
    return f'<div class="grid">{cells}</div>'


PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; }
.grid { display: flex; flex-wrap: wrap; gap: 0.8em; }
figure { margin: 0; }
figure img { width: 256px; height: 256px; image-rendering: pixelated; border: 1px solid #999; }
figcaption { font-size: 0.8em; max-width: 256px; }
img.plot { max-width: 100%; }
"""


def write_html_page(path: str | os.PathLike[str], title: str, sections: Sequence[str]) -> None:
    """A self-contained (offline) HTML page from pre-rendered section fragments."""
    body = "\n".join(sections)
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    write_bytes_atomic(Path(path), page.encode("utf-8"))


def write_csv(
    path: str | os.PathLike[str], rows: Sequence[Mapping[str, object]], columns: Sequence[str]
) -> None:
    """Write `rows` as CSV (header first) atomically; missing fields are left empty."""
    import csv

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, buffer.getvalue().encode("utf-8"))
