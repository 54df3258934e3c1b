"""KPI scorecard charts and table colours."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from kam_analysis.core.i18n import label_for, t
from kam_analysis.report.style import FULL_WIDTH_IN, _new_ax, _plain, money_formatter, pct_formatter


def _axis_formatter(kind: str, currency: str, lang: str) -> FuncFormatter | None:
    if kind in ("money", "money_compact"):
        return money_formatter(currency, lang=lang)
    if kind == "pct":
        return pct_formatter(0)
    return None


def small_multiples(
    df: pd.DataFrame,
    *,
    panel: str,
    x: str,
    y: str,
    reference: str | None = None,
    band: str | None = None,
    titles: Mapping[Any, str] | None = None,
    formats: Mapping[Any, str] | None = None,
    ncols: int = 3,
    currency: str = "JPY",
    lang: str = "en",
    legend: Mapping[str, str] | None = None,
    width: float = FULL_WIDTH_IN,
    panel_height: float = 2.3,
    max_xticks: int = 6,
) -> Figure:
    """One small line chart per panel (e.g. per KPI), each with its own y scale.

    Parameters
    ----------
    df : DataFrame
        Long table: columns ``panel``, ``x`` (ordered categories such as period
        labels, drawn in the order they first appear), ``y`` and optionally
        ``reference`` (a target line, dashed) and ``band`` (a second reference,
        dotted, e.g. the at-risk boundary).
    panel, x, y : str
        Column names.
    reference, band : str, optional
    titles : mapping, optional
        Panel value -> title (default: the panel value).
    formats : mapping, optional
        Panel value -> y-axis format: ``"money"`` (compact), ``"pct"``, anything else
        plain numbers.
    ncols : int, default 3
    currency, lang : str
        For money axes.
    legend : mapping, optional
        Legend texts for the keys ``"value"``, ``"target"``, ``"at_risk"``; shown once
        under the figure when given.
    width, panel_height : float
        Inches.
    max_xticks : int, default 6
        At most this many x labels per panel (the last one always shown).

    Returns
    -------
    Figure
        One axes per panel (unused grid cells are hidden), in the order panels first
        appear in ``df``.

    Raises
    ------
    KeyError
        For a missing column.
    ValueError
        For an empty frame or ``ncols < 1``.
    """
    needed = [c for c in (panel, x, y, reference, band) if c is not None]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise KeyError(f"small_multiples: column(s) {missing} not in the frame")
    if df.empty:
        raise ValueError("small_multiples: no rows to draw")
    if ncols < 1:
        raise ValueError(f"small_multiples: ncols must be >= 1, got {ncols}")
    panels = list(dict.fromkeys(df[panel]))
    order = list(dict.fromkeys(df[x]))
    pos = {v: i for i, v in enumerate(order)}
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width, panel_height * nrows + (0.4 if legend else 0.0)),
        squeeze=False,
        layout="constrained",
    )
    step = max(1, math.ceil(len(order) / max_xticks))
    ticks = sorted({*range(len(order) - 1, -1, -step)})
    handles: dict[str, Any] = {}
    for ax, key in zip(axes.flat, panels, strict=False):
        d = df[df[panel] == key]
        xs = d[x].map(pos).to_numpy(dtype=float)
        (line,) = ax.plot(xs, d[y].to_numpy(dtype=float), color="C0", lw=2, marker="o", ms=3)
        handles.setdefault("value", line)
        if reference is not None and d[reference].notna().any():
            (ref,) = ax.plot(xs, d[reference].to_numpy(dtype=float), color="0.25", ls="--", lw=1.2)
            handles.setdefault("target", ref)
        if band is not None and d[band].notna().any():
            (bd,) = ax.plot(xs, d[band].to_numpy(dtype=float), color="C3", ls=":", lw=1.2)
            handles.setdefault("at_risk", bd)
        ax.set_title(_plain((titles or {}).get(key, key)), fontsize=10)
        ax.set_xticks(ticks, [_plain(order[i]) for i in ticks], fontsize=7, rotation=30)
        ax.tick_params(axis="y", labelsize=8)
        fmt = _axis_formatter((formats or {}).get(key, ""), currency, lang)
        if fmt is not None:
            ax.yaxis.set_major_formatter(fmt)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    if legend:
        keys = [k for k in ("value", "target", "at_risk") if k in handles and k in legend]
        fig.legend(
            [handles[k] for k in keys],
            [legend[k] for k in keys],
            loc="outside lower center",
            ncols=len(keys),
            frameon=False,
        )
    return fig


def hist_by_group(
    df: pd.DataFrame,
    value: str,
    group: str,
    *,
    bins: int | Sequence[float] = 20,
    value_range: tuple[float, float] | None = None,
    order: Sequence[Any] | None = None,
    group_prefix: str = "tier.",
    lang: str = "en",
    xlabel: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Stacked histogram of a value, one colour per group (e.g. health score by tier).

    Parameters
    ----------
    df : DataFrame
        Columns ``value`` (numeric; missing values are left out) and ``group``.
    value, group : str
    bins : int or sequence, default 20
    value_range : (float, float), optional
        Range of the bins (e.g. ``(0, 100)`` for a score).
    order : sequence, optional
        Groups to draw, bottom first (default: sorted); others are left out.
    group_prefix : str, default "tier."
        Translation prefix of the group names in the legend (see :func:`label_for`).
    lang : str, default "en"
    xlabel : str, optional
        Default: ``label_for(value, prefix="axis.")``.
    ax : Axes, optional
    title : str, optional

    Returns
    -------
    Axes
        One bar container per drawn group; the y axis counts accounts.

    Raises
    ------
    KeyError
        For a missing column.
    """
    missing = [c for c in (value, group) if c not in df.columns]
    if missing:
        raise KeyError(f"hist_by_group: column(s) {missing} not in the frame")
    data = df[df[value].notna()]
    groups = list(order) if order is not None else sorted(data[group].dropna().unique())
    arrays = [data.loc[data[group] == g, value].to_numpy(dtype=float) for g in groups]
    ax = _new_ax(ax)
    ax.hist(
        arrays,
        bins=bins,
        range=value_range,
        stacked=True,
        color=[f"C{i % 10}" for i in range(len(groups))],
        label=[_plain(label_for(g, lang, prefix=group_prefix)) for g in groups],
        edgecolor="white",
        linewidth=0.5,
    )
    ax.set_xlabel(_plain(xlabel) if xlabel is not None else label_for(value, lang, prefix="axis."))
    ax.set_ylabel(t("axis.accounts", lang))
    ax.legend(loc="upper left")
    if title:
        ax.set_title(_plain(title))
    return ax
