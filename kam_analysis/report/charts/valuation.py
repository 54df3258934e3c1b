"""Valuation and segmentation charts: rank intervals, wallet bars, quadrants, Pareto curves."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from kam_analysis.core.formatting import fmt_pct
from kam_analysis.core.i18n import label_for, t
from kam_analysis.report.charts.base import place_legend, scatter_labeled
from kam_analysis.report.style import (
    FULL_WIDTH_IN,
    _interval_rows,
    _new_ax,
    _plain,
    _require_cols,
    money_formatter,
    pct_formatter,
)


def family_colors(
    groups: Mapping[str, Sequence[str]],
    *,
    cmaps: Sequence[str] = ("Blues", "Greens", "Oranges", "Purples", "Greys"),
    prefix: str = "",
) -> dict[str, tuple[float, float, float, float]]:
    """One colour per criterion, shades of one hue per family of criteria.

    Parameters
    ----------
    groups : mapping
        Family -> criteria (e.g. :data:`kam_analysis.valuation.CRITERION_GROUPS`).
    cmaps : sequence of str
        A matplotlib colour map per family, in order (cycled).
    prefix : str, default ""
        Prepended to every criterion name in the keys (e.g. ``"contrib_"``).

    Returns
    -------
    dict
        ``prefix + criterion`` -> RGBA; the first criterion of a family gets
        the darkest shade.
    """
    out: dict[str, tuple[float, float, float, float]] = {}
    for i, criteria in enumerate(groups.values()):
        cmap = mpl.colormaps[cmaps[i % len(cmaps)]]
        shades = np.linspace(0.85, 0.35, max(len(criteria), 2))
        for name, shade in zip(criteria, shades, strict=False):
            out[f"{prefix}{name}"] = tuple(float(c) for c in cmap(shade))
    return out


def rank_intervals(
    df: pd.DataFrame,
    *,
    label: str,
    rank: str = "base_rank",
    low: str = "rank_p10",
    high: str = "rank_p90",
    hue: str | None = None,
    hue_prefix: str = "tier.",
    top_n: int | None = None,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Rank of each account with its interval (e.g. P10-P90 over weight draws), best at the top.

    Parameters
    ----------
    df : DataFrame
        Columns ``label``, ``rank``, ``low``, ``high`` (1 = best) and
        optionally ``hue`` (e.g. the base tier).
    label, rank, low, high : str
        Column names.
    hue : str, optional
        Categorical column colouring the points.
    hue_prefix : str, default "tier."
        Translation prefix of the hue categories.
    top_n : int, optional
        Keep the ``top_n`` best-ranked rows.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        One error bar per row; the x axis runs from rank 1 (left). The legend
        (with ``hue``) covers no interval (:func:`place_legend`).

    Raises
    ------
    ValueError
        For an empty frame or a missing column.
    """
    _require_cols(df, "rank_intervals", [label, rank, low, high] + ([hue] if hue else []))
    data = df.sort_values(rank, kind="stable")
    if top_n is not None:
        data = data.head(int(top_n))
    ax = _new_ax(ax, height=max(2.5, 0.32 * len(data) + 1.2))
    _interval_rows(ax, data, rank, low, high, label, hue, lang, hue_prefix)
    ax.set_xlim(left=0.5)
    ax.set_xlabel(t("valuation.chart.rank_axis", lang))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    if hue:
        place_legend(ax, loc="lower right")
    return ax


def wallet_bars(
    df: pd.DataFrame,
    *,
    label: str,
    revenue: str = "revenue_12m",
    wallet: str = "wallet_estimate",
    currency: str = "JPY",
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Our revenue inside the customer's wallet: one bar per account, in the given order.

    Parameters
    ----------
    df : DataFrame
        Columns ``label``, ``revenue`` and ``wallet`` (the customer's spend in
        our category; missing: only the revenue bar is drawn). The first row
        is drawn at the top.
    label, revenue, wallet : str
        Column names.
    currency : str, default "JPY"
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        Two bar containers (wallet behind, revenue in front); each bar is
        annotated with the share of wallet. The legend sits in a corner where
        it covers no bar or label, else below the axis (:func:`place_legend`).

    Raises
    ------
    ValueError
        For an empty frame or a missing column.
    """
    _require_cols(df, "wallet_bars", [label, revenue, wallet])
    ax = _new_ax(ax, height=max(2.5, 0.32 * len(df) + 1.2))
    y = np.arange(len(df))[::-1]
    rev = np.nan_to_num(df[revenue].to_numpy(dtype=float))
    wal = df[wallet].to_numpy(dtype=float)
    ax.barh(y, np.nan_to_num(wal), color="0.85", label=t("valuation.chart.wallet", lang))
    ax.barh(y, rev, color="C0", height=0.5, label=t("valuation.chart.our_revenue", lang))
    with np.errstate(all="ignore"):
        share = np.where(wal > 0, rev / wal, np.nan)
    for yi, end, s in zip(y, np.fmax(np.nan_to_num(wal), rev), share, strict=True):
        if np.isfinite(s):
            ax.annotate(
                fmt_pct(s, 0),
                xy=(end, yi),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=9,
            )
    ax.set_yticks(y, [_plain(s) for s in df[label]])
    ax.xaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.set_xlabel(t("axis.revenue", lang))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    place_legend(ax, loc="lower right")
    return ax


_CORNERS = {
    "upper right": (0.98, 0.98, "right", "top"),
    "upper left": (0.02, 0.98, "left", "top"),
    "lower right": (0.98, 0.02, "right", "bottom"),
    "lower left": (0.02, 0.02, "left", "bottom"),
}


def quadrant_scatter(
    df: pd.DataFrame,
    x: str,
    y: str,
    label: str,
    *,
    x_split: float,
    y_split: float,
    quadrant: str = "quadrant",
    corners: Mapping[str, str] | None = None,
    quadrant_prefix: str = "segmentation.quadrant.",
    top_n: int = 10,
    rank_by: str | None = None,
    lang: str = "en",
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """A 2 x 2 matrix: points coloured by quadrant, split lines, quadrant names, top-N labels.

    Parameters
    ----------
    df : DataFrame
        Columns ``x``, ``y`` (numeric), ``label`` and ``quadrant``.
    x, y, label : str
        Column names (axis titles via :func:`label_for` with prefix ``"axis."``).
    x_split, y_split : float
        Where the quadrants split.
    quadrant : str, default "quadrant"
        Column with the quadrant of each point.
    corners : mapping, optional
        Corner (``"upper right"``, ``"upper left"``, ``"lower right"``,
        ``"lower left"``) -> quadrant name; default the key-account portfolio
        matrix (strategic, star, status, streamline with our position on x).
    quadrant_prefix : str, default "segmentation.quadrant."
        Translation prefix of the quadrant names.
    top_n : int, default 10
        Points labelled (largest ``rank_by``, default ``y``).
    rank_by : str, optional
    lang : str, default "en"
    ax : Axes, optional
    title : str, optional

    Returns
    -------
    Axes
        ``ax.texts``: the four quadrant names, then the point labels (top
        ``rank_by`` first), stacked in a column beside the points so that they
        do not overlap, each joined to its (ringed) point.

    Raises
    ------
    ValueError
        For an empty frame or a missing column.
    ValueError
        For an unknown corner.
    """
    corners = dict(
        corners
        or {
            "upper right": "strategic",
            "upper left": "star",
            "lower right": "status",
            "lower left": "streamline",
        }
    )
    bad = sorted(set(corners) - set(_CORNERS))
    if bad:
        raise ValueError(f"quadrant_scatter: unknown corner(s) {bad}; use {list(_CORNERS)}")
    _require_cols(df, "quadrant_scatter", [x, y, label, quadrant])
    ax = _new_ax(ax, height=FULL_WIDTH_IN * 0.7)
    for corner, name in corners.items():
        cx, cy, ha, va = _CORNERS[corner]
        ax.text(
            cx,
            cy,
            _plain(label_for(name, lang, prefix=quadrant_prefix)),
            transform=ax.transAxes,
            ha=ha,
            va=va,
            fontsize=12,
            color="0.35",
        )
    order = list(corners.values()) + sorted(set(df[quadrant].astype(str)) - set(corners.values()))
    data = df.assign(**{quadrant: pd.Categorical(df[quadrant].astype(str), categories=order)})
    scatter_labeled(
        data, x, y, label, top_n=0, hue=quadrant, hue_prefix=quadrant_prefix, lang=lang, ax=ax
    )
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()  # the corners name the quadrants
    ax.axvline(x_split, color="0.4", ls="--", lw=1)
    ax.axhline(y_split, color="0.4", ls="--", lw=1)
    if top_n > 0 and len(df):
        rank = df[rank_by or y].to_numpy(dtype=float)
        order = np.argsort(np.where(np.isnan(rank), np.inf, -rank), kind="stable")
        order = order[~np.isnan(rank[order])][:top_n]
        _stacked_labels(
            ax,
            df[x].to_numpy(dtype=float)[order],
            df[y].to_numpy(dtype=float)[order],
            [str(v) for v in df[label].to_numpy()[order]],
        )
    if title:
        ax.set_title(_plain(title))
    return ax


def _stacked_labels(
    ax: Axes, xs: np.ndarray, ys: np.ndarray, texts: Sequence[str], gap: float = 0.045
) -> None:
    """Name points in one column beside them, stacked so that no two labels overlap.

    The points are ringed; each label sits at its point's height or lower (at least
    ``gap`` of the axis height below the previous one) and is joined to it by a thin line.
    The column stands on the side of the points with more room.
    """
    if len(xs) == 0:
        return
    ax.scatter(xs, ys, s=45, facecolors="none", edgecolors="black", lw=0.9, zorder=3)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    dx, dy = 0.05 * (x1 - x0), gap * (y1 - y0)
    left = np.median(xs) > (x0 + x1) / 2
    col_x = xs.min() - dx if left else xs.max() + dx
    order = np.argsort(-ys, kind="stable")
    text_y = min(ys[order[0]], y1 - dy / 2)
    for k, i in enumerate(order):
        if k:
            text_y = min(ys[i], text_y - dy)
        ax.annotate(
            _plain(texts[i]),
            xy=(xs[i], ys[i]),
            xytext=(col_x, text_y),
            textcoords="data",
            ha="right" if left else "left",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            arrowprops={"arrowstyle": "-", "color": "0.4", "lw": 0.6, "shrinkA": 0, "shrinkB": 3},
            zorder=4,
        )


def pareto_curves(
    table: pd.DataFrame,
    *,
    mark: float | None = 0.2,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Cumulative revenue (and gross profit) against the share of accounts, largest first.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`kam_analysis.segmentation.pareto_table`:
        ``cum_account_share``, ``cum_share`` and optionally ``cum_gp_share``
        (gross profit in the same account order).
    mark : float or None, default 0.2
        Mark the shares held by the top ``mark`` fraction of accounts.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        Lines: revenue, gross profit (when available), equal shares.

    Raises
    ------
    ValueError
        For an empty frame or a missing column.
    ValueError
        For ``mark`` outside (0, 1).
    """
    _require_cols(table, "pareto_curves", ["cum_account_share", "cum_share"])
    if mark is not None and not 0 < mark < 1:
        raise ValueError(f"pareto_curves: mark must be between 0 and 1, got {mark}")
    xs = np.concatenate([[0.0], table["cum_account_share"].to_numpy(dtype=float)])
    ax = _new_ax(ax)
    curves = [("cum_share", "axis.revenue", "C0")]
    if "cum_gp_share" in table.columns:
        curves.append(("cum_gp_share", "axis.gross_profit", "C2"))
    top = 1.02
    for col, key, color in curves:
        ys = np.concatenate([[0.0], table[col].to_numpy(dtype=float)])
        top = max(top, float(np.nanmax(ys)) + 0.02)
        first = col == "cum_share"
        ax.plot(xs, ys, color=color, lw=2, ls="-" if first else "--", label=t(key, lang))
        if mark is not None:
            k = math.ceil(mark * (len(xs) - 1) - 1e-9)
            ax.plot([xs[k]], [ys[k]], "o", color=color)
            ax.annotate(
                fmt_pct(ys[k], 0),
                xy=(xs[k], ys[k]),
                xytext=(-8, 6) if first else (8, -14),
                textcoords="offset points",
                ha="right" if first else "left",
                color=color,
            )
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label=t("pareto.equality", lang))
    if mark is not None:
        ax.axvline(mark, color="C3", ls="--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, top)
    ax.xaxis.set_major_formatter(pct_formatter())
    ax.yaxis.set_major_formatter(pct_formatter())
    ax.set_xlabel(t("axis.share_of_accounts", lang))
    ax.set_ylabel(t("segmentation.chart.cumulative_share", lang))
    if title:
        ax.set_title(_plain(title))
    place_legend(ax, loc="lower right")
    return ax
