"""Chart primitives for the report: data in, PNG bytes out (matplotlib, Agg backend, one look for all).

Each function draws one figure and closes it, so a report of any size holds no open figures. Nothing here
reads files; the sections decide what to draw.

Labels are user text (sources, tactics, model names): every chart draws them literally (no mathtext for
``$…$``, no LaTeX), on one line (control characters escaped), cut to a readable length and kept distinct.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI; must precede pyplot's import

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cotforge.safe_text import clipped, visible

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974"]
WIDTH = 7.5
DPI = 100
LABEL_CHARS = 48
TITLE_CHARS = 100

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def literal_text() -> Iterator[None]:
    """Inside: every text matplotlib draws (titles, ticks, legends) is drawn as typed.

    Otherwise matplotlib reads ``$…$`` as mathtext (a bad command fails the whole draw) and, with usetex,
    everything as LaTeX.
    """
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        yield


def _drawn_literally(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with literal_text():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def label(text: object, limit: int = LABEL_CHARS) -> str:
    """A user value as a chart label: one line, control characters visible, at most ``limit`` characters."""
    return clipped(visible(text), limit)


def _labels(names: Sequence[object]) -> list[str]:
    """Labels for ``names``, distinct even where cutting made two the same (bars on one category would merge)."""
    out: list[str] = []
    for name in names:
        shown = base = label(name)
        n = 1
        while shown in out:
            n += 1
            shown = f"{base} ({n})"
        out.append(shown)
    return out


def _png(fig: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def _style(ax: Axes, title: str, xlabel: str = "", ylabel: str = "") -> None:
    ax.set_title(label(title, TITLE_CHARS), fontsize=11, loc="left")
    ax.set_xlabel(label(xlabel))
    ax.set_ylabel(label(ylabel))
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)


@_drawn_literally
def bar_chart(
    counts: Mapping[str, float],
    title: str,
    ylabel: str = "count",
    horizontal: bool | None = None,
    dpi: int = DPI,
) -> bytes:
    """Bars of ``counts`` in the given order, each labelled with its value; horizontal when labels are long."""
    labels, values = _labels(list(counts)), list(counts.values())
    horizontal = horizontal if horizontal is not None else max((len(x) for x in labels), default=0) > 12
    height = max(2.6, 0.34 * len(labels) + 1.2) if horizontal else 3.4
    fig, ax = plt.subplots(figsize=(WIDTH, height))
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(labels))]
    if horizontal:
        bars = ax.barh(labels[::-1], values[::-1], color=colours[::-1])
        _style(ax, title, xlabel=ylabel)
        ax.grid(axis="y", alpha=0)
        ax.grid(axis="x", alpha=0.3)
    else:
        bars = ax.bar(labels, values, color=colours)
        _style(ax, title, ylabel=ylabel)
        if len(labels) > 5:
            ax.tick_params(axis="x", labelrotation=30)
    ax.bar_label(bars, fmt="%g", fontsize=8, padding=2)
    return _png(fig, dpi)


@_drawn_literally
def grouped_bars(
    groups: Mapping[str, Mapping[str, float]],
    title: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
    dpi: int = DPI,
    intervals: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
) -> bytes:
    """One cluster per x label; one coloured bar per series. ``groups``: series → {x label → value}.

    ``intervals`` (series → {x label → (low, high)}) draws error bars, e.g. 95% confidence intervals.
    """
    keys = sorted({x for series in groups.values() for x in series})
    fig, ax = plt.subplots(figsize=(max(WIDTH, 0.6 * len(keys) * max(1, len(groups))), 3.8))
    width = 0.8 / max(1, len(groups))
    for i, (name, series) in enumerate(zip(_labels(list(groups)), groups.values(), strict=True)):
        xs = [j + i * width for j in range(len(keys))]
        values = [series.get(x, 0.0) for x in keys]
        spans = (intervals or {}).get(list(groups)[i], {})
        yerr = [
            [v - spans[x][0] if x in spans else 0.0 for x, v in zip(keys, values, strict=True)],
            [spans[x][1] - v if x in spans else 0.0 for x, v in zip(keys, values, strict=True)],
        ]
        ax.bar(xs, values, width, label=name, color=PALETTE[i % len(PALETTE)],
               yerr=yerr if spans else None, capsize=3)  # fmt: skip
    ax.set_xticks([j + width * (len(groups) - 1) / 2 for j in range(len(keys))], _labels(keys))
    if len(keys) > 4:
        ax.tick_params(axis="x", labelrotation=30)
    if ylim:
        ax.set_ylim(*ylim)
    _style(ax, title, ylabel=ylabel)
    ax.legend(fontsize=8, frameon=False)
    return _png(fig, dpi)


@_drawn_literally
def histograms(
    series: Mapping[str, Sequence[float]],
    title: str,
    xlabel: str,
    bins: int = 20,
    value_range: tuple[float, float] | None = None,
    dpi: int = DPI,
) -> bytes:
    """Side-by-side histograms, one panel per series, sharing the x range."""
    n = max(1, len(series))
    fig, axes = plt.subplots(1, n, figsize=(WIDTH if n < 3 else 10, 3.2), sharey=True, squeeze=False)
    lo_hi = value_range
    if lo_hi is None:
        flat = [v for s in series.values() for v in s]
        lo_hi = (min(flat, default=0.0), max(flat, default=1.0) or 1.0)
    for i, (name, values) in enumerate(zip(_labels(list(series)), series.values(), strict=True)):
        ax = axes[0][i]
        ax.hist(list(values), bins=bins, range=lo_hi, color=PALETTE[i % len(PALETTE)], edgecolor="white")
        _style(ax, f"{name} (n={len(values)})", xlabel=xlabel, ylabel="count" if i == 0 else "")
    fig.suptitle(label(title, TITLE_CHARS), fontsize=12, x=0.01, ha="left")
    return _png(fig, dpi)


@_drawn_literally
def line_panels(
    panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]], title: str, dpi: int = DPI
) -> bytes:
    """Small multiples of line charts: panel title → {series → (steps, values)}."""
    n = max(1, len(panels))
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH if cols == 1 else 10, 2.9 * rows), squeeze=False)
    for k, (name, series) in enumerate(zip(_labels(list(panels)), panels.values(), strict=True)):
        ax = axes[k // cols][k % cols]
        for i, (line, (xs, ys)) in enumerate(zip(_labels(list(series)), series.values(), strict=True)):
            ax.plot(
                list(xs), list(ys), marker="o", markersize=2.5, label=line, color=PALETTE[i % len(PALETTE)]
            )
        _style(ax, name, xlabel="step")
        if len(series) > 1:
            ax.legend(fontsize=8, frameon=False)
    for k in range(len(panels), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    fig.suptitle(label(title, TITLE_CHARS), fontsize=12, x=0.01, ha="left")
    return _png(fig, dpi)
