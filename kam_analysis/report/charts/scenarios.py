"""Scenario-planning charts: fans, tornado, concentration trend, schemes, break-even."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from kam_analysis.core.formatting import fmt_pct
from kam_analysis.core.i18n import label_for, t
from kam_analysis.report.charts.base import fan_chart
from kam_analysis.report.charts.kpi import _axis_formatter
from kam_analysis.report.style import (
    FULL_WIDTH_IN,
    _new_ax,
    _plain,
    _require_cols,
    money_formatter,
    pct_formatter,
)


def scenario_fans(
    frame: pd.DataFrame,
    *,
    x: str = "date",
    history: pd.Series | None = None,
    target: float | None = None,
    titles: Mapping[Any, str] | None = None,
    ncols: int = 3,
    lang: str = "en",
    currency: str = "JPY",
    width: float = FULL_WIDTH_IN,
    panel_height: float = 3.0,
) -> Figure:
    """One fan chart per scenario, side by side on a shared y axis.

    Parameters
    ----------
    frame : DataFrame
        Long table with ``scenario``, ``x`` and ``p10``, ``p50``, ``p90`` (e.g.
        :func:`kam_analysis.scenarios.scenario_monthly`); panels in the order
        scenarios first appear.
    x : str, default "date"
        Time column (dates or month numbers).
    history : Series, optional
        Observed values (index = time) drawn in black in every panel.
    target : float, optional
        A monthly reference level (e.g. today's run-rate), dashed.
    titles : mapping, optional
        Scenario -> panel title (default: translated ``scenarios.scenario.<name>``
        or a readable name).
    ncols : int, default 3
    lang, currency : str
    width, panel_height : float
        Inches.

    Returns
    -------
    Figure
        One visible axes per scenario, each with one band (P10-P90) and the median
        line; the legend is drawn once, under the panels.

    Raises
    ------
    ValueError
        For a missing column, an empty frame or ``ncols < 1``.
    """
    _require_cols(frame, "scenario_fans", ["scenario", x, "p10", "p50", "p90"])
    if ncols < 1:
        raise ValueError(f"scenario_fans: ncols must be >= 1, got {ncols}")
    names = list(dict.fromkeys(frame["scenario"]))
    ncols = min(ncols, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width, panel_height * nrows + 0.5),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    handles: dict[str, Any] = {}
    for i, (ax, name) in enumerate(zip(axes.flat, names, strict=False)):
        part = frame[frame["scenario"] == name].set_index(x)
        fan_chart(
            part[["p10", "p50", "p90"]].set_axis([0.1, 0.5, 0.9], axis=1),
            actual=history,
            ax=ax,
            lang=lang,
            currency=currency,
            color=f"C{i % 10}",
        )
        if target is not None:
            ax.axhline(target, color="0.3", ls="--", lw=1, label=t("scenarios.legend.target", lang))
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(text, handle)
        ax.get_legend().remove()
        title = (titles or {}).get(name) or label_for(name, lang, prefix="scenarios.scenario.")
        ax.set_title(_plain(title), fontsize=11)
        ax.tick_params(axis="x", labelsize=8, rotation=30)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncols=len(handles),
        frameon=False,
    )
    return fig


def tornado_chart(
    table: pd.DataFrame,
    *,
    label_prefix: str = "scenarios.input.",
    kind: str = "money",
    currency: str = "JPY",
    top_n: int | None = None,
    ax: Axes | None = None,
    lang: str = "en",
    xlabel: str | None = None,
    title: str | None = None,
) -> Axes:
    """Tornado chart: the output at each input's low and high value around the base.

    Parameters
    ----------
    table : DataFrame
        :func:`kam_analysis.pricing.tornado` output: ``input``, ``low_value``,
        ``high_value``, ``output_base``, ``output_low``, ``output_high``,
        ``swing``; drawn largest swing at the top.
    label_prefix : str, default "scenarios.input."
        Translation prefix of the input names (see :func:`label_for`).
    kind : {"money", "pct", "number"}, default "money"
        Format of the output axis.
    currency : str, default "JPY"
    top_n : int, optional
        Only the inputs with the largest swings.
    ax : Axes, optional
    lang : str, default "en"
    xlabel, title : str, optional

    Returns
    -------
    Axes
        Two bar containers (input at its low value, at its high value), one bar
        per input each, starting at the base output.

    Raises
    ------
    ValueError
        For a missing column or an empty table.
    """
    cols = ["input", "low_value", "high_value", "output_base", "output_low", "output_high", "swing"]
    _require_cols(table, "tornado_chart", cols)
    data = table.sort_values("swing", ascending=False, kind="stable")
    if top_n is not None:
        data = data.head(int(top_n))
    base = float(data["output_base"].iloc[0])
    ax = _new_ax(ax, height=max(2.5, 0.45 * len(data) + 1.4))
    y = np.arange(len(data))[::-1]
    low = data["output_low"].to_numpy(dtype=float)
    high = data["output_high"].to_numpy(dtype=float)
    ax.barh(y, low - base, left=base, color="C3", alpha=0.8, label=t("scenarios.legend.low", lang))
    ax.barh(
        y, high - base, left=base, color="C0", alpha=0.8, label=t("scenarios.legend.high", lang)
    )
    ax.axvline(base, color="0.2", lw=1)
    ax.set_yticks(y, [_plain(label_for(v, lang, prefix=label_prefix)) for v in data["input"]])
    fmt = _axis_formatter(kind, currency, lang)
    if fmt is not None:
        ax.xaxis.set_major_formatter(fmt)
    if xlabel:
        ax.set_xlabel(_plain(xlabel))
    ax.legend(loc="lower right")
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


def concentration_trend_plot(
    trend: pd.DataFrame,
    metrics: Sequence[str] = ("top1_share", "top5_share", "top10_share"),
    *,
    basis: str = "revenue",
    thresholds: Mapping[str, float | None] | None = None,
    kind: str = "pct",
    ax: Axes | None = None,
    lang: str = "en",
    ylabel: str | None = None,
    title: str | None = None,
) -> Axes:
    """Concentration metrics per period, with their over-dependence thresholds dashed.

    Parameters
    ----------
    trend : DataFrame
        :func:`kam_analysis.scenarios.concentration_trend` output (``period``,
        ``basis`` and one column per metric).
    metrics : sequence of str
        Metric columns, one line each (legend: ``scenarios.metric.<name>``).
    basis : str, default "revenue"
        Rows of this basis only.
    thresholds : mapping, optional
        Metric -> flag level (None: no line), in the metric's units.
    kind : {"pct", "number"}, default "pct"
        Shares as percentages, or plain numbers (HHI).
    ax : Axes, optional
    lang : str, default "en"
    ylabel, title : str, optional

    Returns
    -------
    Axes
        One solid line per metric, then one dashed line per threshold drawn.

    Raises
    ------
    ValueError
        For a missing column, an empty frame or no row with the requested basis.
    """
    _require_cols(trend, "concentration_trend_plot", ["period", "basis", *metrics])
    data = trend[trend["basis"] == basis]
    if data.empty:
        raise ValueError(f"concentration_trend_plot: no rows with basis {basis!r}")
    ax = _new_ax(ax)
    x = np.arange(len(data))
    for i, metric in enumerate(metrics):
        ax.plot(
            x,
            data[metric].to_numpy(dtype=float),
            color=f"C{i % 10}",
            lw=2,
            marker="o",
            ms=3,
            label=label_for(metric, lang, prefix="scenarios.metric."),
        )
    for i, metric in enumerate(metrics):
        level = (thresholds or {}).get(metric)
        if level is not None:
            ax.axhline(
                float(level),
                color=f"C{i % 10}",
                ls="--",
                lw=1,
                label=t(
                    "scenarios.legend.threshold",
                    lang,
                    metric=label_for(metric, lang, prefix="scenarios.metric."),
                ),
            )
    step = max(1, math.ceil(len(data) / 8))
    ticks = sorted({*range(len(data) - 1, -1, -step)})
    periods = data["period"].astype(str).to_numpy()
    ax.set_xticks(ticks, [_plain(periods[i]) for i in ticks])
    if kind == "pct":
        ax.yaxis.set_major_formatter(pct_formatter(0))
        ax.set_ylim(bottom=0)
    if ylabel:
        ax.set_ylabel(_plain(ylabel))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(_plain(title))
    return ax


def scheme_boxplot(
    draws: pd.DataFrame,
    metric: str,
    *,
    group: str = "scheme",
    order: Sequence[str] | None = None,
    label_prefix: str = "scenarios.scheme.",
    ax: Axes | None = None,
    lang: str = "en",
    currency: str = "JPY",
    xlabel: str | None = None,
    title: str | None = None,
) -> Axes:
    """Horizontal box plots of one outcome per group: box P25-P75, whiskers P10-P90, median line.

    Parameters
    ----------
    draws : DataFrame
        One row per draw and group (e.g.
        :func:`kam_analysis.pricing.simulate_pricing_schemes`), with ``group``
        and ``metric`` columns.
    metric : str
        Money column to draw.
    group : str, default "scheme"
    order : sequence of str, optional
        Groups from top to bottom (default: order of first appearance).
    label_prefix : str, default "scenarios.scheme."
    ax : Axes, optional
    lang, currency : str
    xlabel, title : str, optional

    Returns
    -------
    Axes
        One box per group; the x axis is money; a thin line marks 0.

    Raises
    ------
    ValueError
        For a missing column, an empty frame or a group without finite values.
    """
    _require_cols(draws, "scheme_boxplot", [group, metric])
    groups = list(order) if order is not None else list(dict.fromkeys(draws[group]))
    values = []
    for g in groups:
        v = draws.loc[draws[group] == g, metric].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            raise ValueError(f"scheme_boxplot: group {g!r} has no finite {metric!r} values")
        values.append(v)
    ax = _new_ax(ax, height=max(2.2, 0.5 * len(groups) + 1.2))
    y = np.arange(len(groups))[::-1] + 1
    ax.boxplot(
        values,
        positions=y,
        orientation="horizontal",
        whis=(10, 90),
        showfliers=False,
        widths=0.55,
        patch_artist=True,
        boxprops={"facecolor": "C0", "alpha": 0.45},
        medianprops={"color": "C3", "lw": 2},
    )
    ax.set_yticks(y, [_plain(label_for(g, lang, prefix=label_prefix)) for g in groups])
    ax.axvline(0, color="0.4", lw=0.8)
    ax.xaxis.set_major_formatter(money_formatter(currency, lang=lang))
    if xlabel:
        ax.set_xlabel(_plain(xlabel))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


def break_even_plot(
    curve: pd.DataFrame,
    *,
    mark: float | None = None,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Volume increase needed to keep gross profit, against the price cut.

    Parameters
    ----------
    curve : DataFrame
        :func:`kam_analysis.scenarios.break_even_curve` output (``price_cut``,
        ``volume_increase``, fractions; infinite values are left out).
    mark : float, optional
        A price cut (fraction) to highlight with its required volume increase.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        The first line is the curve; with ``mark``, a point and its annotation.

    Raises
    ------
    ValueError
        For a missing column, an empty frame or no finite point.
    """
    _require_cols(curve, "break_even_plot", ["price_cut", "volume_increase"])
    cut = curve["price_cut"].to_numpy(dtype=float)
    vol = curve["volume_increase"].to_numpy(dtype=float)
    ok = np.isfinite(cut) & np.isfinite(vol)
    if not ok.any():
        raise ValueError("break_even_plot: no finite points")
    ax = _new_ax(ax)
    ax.plot(cut[ok], vol[ok], color="C0", lw=2)
    if mark is not None and ok.sum() > 1:
        y = float(np.interp(mark, cut[ok], vol[ok]))
        ax.plot([mark], [y], "o", color="C3")
        ax.annotate(
            t("scenarios.break_even_mark", lang, cut=fmt_pct(mark, 1), volume=fmt_pct(y, 1)),
            xy=(mark, y),
            xytext=(10, 10),
            textcoords="offset points",
            color="C3",
        )
    ax.xaxis.set_major_formatter(pct_formatter(0))
    ax.yaxis.set_major_formatter(pct_formatter(0))
    ax.set_xlabel(t("scenarios.axis.price_cut", lang))
    ax.set_ylabel(t("scenarios.axis.volume_increase", lang))
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    if title:
        ax.set_title(_plain(title))
    return ax
