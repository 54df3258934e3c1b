"""Stakeholder charts: the account's buying centre as a stakeholder map and an org chart.

The tables behind them (coverage, relationship risks, contact lists, the tree
layout and the pseudonyms) live in :mod:`kam_analysis.stakeholders`; this module
only draws.

Personal data
-------------
Every chart labels a contact with its role and a stable pseudonym
(:func:`kam_analysis.stakeholders.pseudonym`) unless ``show_personal_data=True``;
e-mails and job titles are never drawn.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D

from kam_analysis.core.i18n import check_language, t
from kam_analysis.core.schemas import STANCE_SCORE, STANCES
from kam_analysis.report.style import apply_japanese_font
from kam_analysis.stakeholders import (
    StakeholderSettings,
    account_contacts,
    last_touch,
    pseudonym,
    tree_layout,
)

STANCE_COLOURS: dict[str, str] = {
    "champion": "#1a9641",
    "supporter": "#a6d96a",
    "neutral": "#bdbdbd",
    "skeptic": "#fdae61",
    "blocker": "#d7191c",
}
"""Diverging colours from supportive (green) to opposed (red)."""


@functools.cache
def _japanese_font_file() -> str:
    return apply_japanese_font()


def _font(lang: str) -> FontProperties | None:
    """The Japanese font for ``lang="ja"`` (None: the current default font)."""
    if check_language(lang) != "ja":
        return None
    return FontProperties(fname=_japanese_font_file())


def _stale_days(stale_days: int | None) -> int:
    if stale_days is None:
        return StakeholderSettings().stale_days
    return stale_days


def _role_label(role: object, lang: str) -> str:
    return t(f"stakeholders.{role}", lang)


def _node_label(row: Mapping[str, Any], show_personal_data: bool, salt: str, lang: str) -> str:
    role = _role_label(row["role"], lang)
    if show_personal_data and isinstance(row.get("name"), str) and row.get("name"):
        return f"{row['name']}\n{role}"
    return f"{role}\n{pseudonym(row['contact_id'], salt)}"


def _stance_legend(ax: Axes, lang: str, font: FontProperties | None) -> None:
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color=STANCE_COLOURS[s],
            label=t(f"stakeholders.{s}", lang),
        )
        for s in STANCES
    ]
    prop = font.copy() if font is not None else None
    if prop is not None:
        prop.set_size(8)
    ax.legend(handles=handles, loc="upper right", frameon=False, prop=prop, fontsize=8)


def org_chart(
    stakeholders: pd.DataFrame,
    account_id: str,
    ax: Axes | None = None,
    show_personal_data: bool = False,
    *,
    salt: str = "",
    lang: Literal["en", "ja"] = "en",
) -> Axes:
    """Draw an account's decision structure as a tree from ``reports_to``.

    Nodes are coloured by stance and labelled with the role and a stable
    pseudonym (or the name when ``show_personal_data``). Without ``reports_to``
    the contacts are drawn side by side with a note.

    Parameters
    ----------
    stakeholders : pandas.DataFrame
        ``contact_id, account_id, role, influence, stance`` (+ ``reports_to``, ``name``).
    account_id : str
    ax : matplotlib.axes.Axes, optional
    show_personal_data : bool, default False
    salt : str
        Pseudonym key (:func:`kam_analysis.stakeholders.pseudonym`).
    lang : {"en", "ja"}

    Returns
    -------
    matplotlib.axes.Axes
    """
    font = _font(lang)
    people = account_contacts(stakeholders, account_id)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    ax.set_title(
        f"{t('stakeholders.chart_title', lang)}: {account_id}",
        fontproperties=font,
        parse_math=False,
    )
    ax.set_axis_off()
    if people.empty:
        ax.text(
            0.5,
            0.5,
            t("stakeholders.no_contacts", lang),
            ha="center",
            va="center",
            fontproperties=font,
        )
        return ax
    rep = people["reports_to"] if "reports_to" in people.columns else None
    parents = pd.Series(
        rep.to_numpy() if rep is not None else [None] * len(people), index=people["contact_id"]
    )
    lay = tree_layout(parents)
    if rep is None or rep.isna().all():
        ax.text(
            0.5,
            0.02,
            t("stakeholders.no_reports_to", lang),
            transform=ax.transAxes,
            ha="center",
            fontproperties=font,
        )
    for _node, r in lay.iterrows():
        if pd.notna(r["parent"]):
            pr = lay.loc[r["parent"]]
            ax.plot([pr["x"], r["x"]], [pr["y"], r["y"]], color="#888888", lw=1, zorder=1)
    info = people.set_index("contact_id")
    colours = [STANCE_COLOURS[info.loc[n, "stance"]] for n in lay.index]
    sizes = [150 + 90 * float(info.loc[n, "influence"]) for n in lay.index]
    ax.scatter(lay["x"], lay["y"], s=sizes, c=colours, edgecolors="#333333", zorder=2)
    for node, r in lay.iterrows():
        row = info.loc[node].to_dict() | {"contact_id": node}
        ax.annotate(
            _node_label(row, show_personal_data, salt, lang),
            (r["x"], r["y"]),
            xytext=(0, -16),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=8,
            fontproperties=font,
            parse_math=False,
        )
    ax.set_xlim(lay["x"].min() - 0.8, lay["x"].max() + 0.8)
    ax.set_ylim(lay["y"].min() - 0.8, 0.5)
    _stance_legend(ax, lang, font)
    return ax


def stakeholder_map(
    stakeholders: pd.DataFrame,
    account_id: str,
    ax: Axes | None = None,
    show_personal_data: bool = False,
    lang: Literal["en", "ja"] = "en",
    *,
    as_of: Any = None,
    activities: pd.DataFrame | None = None,
    salt: str = "",
    stale_days: int | None = None,
) -> Axes:
    """Influence x stance map of an account's stakeholders.

    x: stance (blocker -2 ... champion +2), y: influence 1-5; people in the
    same cell are spread on a small circle. Marker size shrinks with the time
    since the last touch (half-life ``stale_days``); colour is the stance.
    Labels: role + pseudonym, or the name when ``show_personal_data``.

    Parameters
    ----------
    stakeholders : pandas.DataFrame
    account_id : str
    ax : matplotlib.axes.Axes, optional
    show_personal_data : bool, default False
    lang : {"en", "ja"}
    as_of : date-like, optional
        Reference date for recency (default today).
    activities : pandas.DataFrame, optional
        Tagged activities count as touches.
    salt : str
        Pseudonym key (:func:`kam_analysis.stakeholders.pseudonym`).
    stale_days : int, optional
        Default: ``StakeholderSettings().stale_days``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    font = _font(lang)
    stale_days = _stale_days(stale_days)
    people = account_contacts(stakeholders, account_id)
    as_of = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.today().normalize()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5.5))
    ax.set_title(
        f"{t('stakeholders.map_title', lang)}: {account_id}", fontproperties=font, parse_math=False
    )
    ax.axvspan(-2.6, -0.5, ymin=0.5, color="#d7191c", alpha=0.05, lw=0)
    ax.axvspan(0.5, 2.6, ymin=0.5, color="#1a9641", alpha=0.05, lw=0)
    ax.axvline(0, color="#cccccc", lw=0.8)
    ax.axhline(3, color="#cccccc", lw=0.8)
    ax.set_xlim(-2.6, 2.6)
    ax.set_ylim(0.4, 5.6)
    ax.set_xticks(
        [STANCE_SCORE[s] for s in STANCES],
        [t(f"stakeholders.{s}", lang) for s in STANCES],
        fontproperties=font,
    )
    ax.set_yticks([1, 2, 3, 4, 5])
    ax.set_xlabel(
        t("stakeholders.stance", lang) + f"  ({t('stakeholders.size_note', lang)})",
        fontproperties=font,
    )
    ax.set_ylabel(t("stakeholders.influence", lang), fontproperties=font)
    if people.empty:
        ax.text(
            0,
            3,
            t("stakeholders.no_contacts", lang),
            ha="center",
            va="center",
            fontproperties=font,
        )
        return ax
    last = last_touch(people, activities, as_of).to_numpy()
    days = (as_of - pd.to_datetime(pd.Series(last))).dt.days.to_numpy(dtype=float)
    size = np.where(
        np.isnan(days), 40.0, 40.0 + 360.0 * 0.5 ** (np.clip(days, 0, None) / stale_days)
    )
    x0 = people["stance"].map(STANCE_SCORE).to_numpy(dtype=float)
    y0 = people["influence"].to_numpy(dtype=float)
    xs, ys = x0.copy(), y0.copy()
    order = np.lexsort((people["contact_id"].to_numpy(), y0, x0))
    cells: dict[tuple[float, float], list[int]] = {}
    for i in order:
        cells.setdefault((x0[i], y0[i]), []).append(int(i))
    for members in cells.values():
        m = len(members)
        if m > 1:
            ang = 2 * np.pi * np.arange(m) / m
            xs[members] += 0.28 * np.cos(ang)
            ys[members] += 0.28 * np.sin(ang)
    colours = [STANCE_COLOURS[s] for s in people["stance"]]
    ax.scatter(xs, ys, s=size, c=colours, edgecolors="#333333", alpha=0.9, zorder=2)
    for i, row in people.iterrows():
        ax.annotate(
            _node_label(row.to_dict(), show_personal_data, salt, lang),
            (xs[i], ys[i]),
            xytext=(6, 4),
            textcoords="offset points",
            fontsize=7,
            fontproperties=font,
            parse_math=False,
        )
    return ax


def stakeholder_panels(
    stakeholders: pd.DataFrame,
    account_ids: Sequence[str],
    *,
    titles: Mapping[str, str] | None = None,
    show_personal_data: bool = False,
    lang: Literal["en", "ja"] = "en",
    as_of: Any = None,
    activities: pd.DataFrame | None = None,
    salt: str = "",
    stale_days: int | None = None,
    org_charts: bool | None = None,
    row_height: float = 4.2,
    width: float = 10.0,
) -> Figure:
    """Stakeholder maps (and org charts) of several accounts in one figure.

    One row per account: :func:`stakeholder_map` on the left and, when
    ``org_charts``, :func:`org_chart` on the right. Personal data follows
    ``show_personal_data`` exactly as in those charts (role + pseudonym by default).

    Parameters
    ----------
    stakeholders : pandas.DataFrame
        ``contact_id, account_id, role, influence, stance`` (+ ``reports_to``,
        ``last_contact_date``, ``name``).
    account_ids : sequence of str
        Accounts, one row each, in this order.
    titles : mapping, optional
        ``account_id -> heading`` (e.g. ``"C000123 Example Corp."``); default the id.
        Drawn as plain text (``$`` does not start mathtext).
    show_personal_data : bool, default False
    lang : {"en", "ja"}
    as_of, activities, salt, stale_days
        As in :func:`stakeholder_map`.
    org_charts : bool, optional
        Draw the org chart column; default: when ``stakeholders`` has a
        ``reports_to`` column with at least one value.
    row_height, width : float
        Inches.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(account_ids)`` rows x 1 or 2 columns of axes.

    Raises
    ------
    ValueError
        For an empty ``account_ids`` or an unknown language.
    """
    ids = [str(a) for a in account_ids]
    if not ids:
        raise ValueError("stakeholder_panels: no account_ids given")
    font = _font(lang)
    if org_charts is None:
        org_charts = "reports_to" in stakeholders.columns and bool(
            stakeholders["reports_to"].notna().any()
        )
    ncols = 2 if org_charts else 1
    fig, axes = plt.subplots(
        len(ids),
        ncols,
        figsize=(width, row_height * len(ids)),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"width_ratios": [1.0, 1.15]} if org_charts else None,
    )
    for row, acc in zip(axes, ids, strict=True):
        stakeholder_map(
            stakeholders,
            acc,
            ax=row[0],
            show_personal_data=show_personal_data,
            lang=lang,
            as_of=as_of,
            activities=activities,
            salt=salt,
            stale_days=stale_days,
        )
        if org_charts:
            org_chart(
                stakeholders,
                acc,
                ax=row[1],
                show_personal_data=show_personal_data,
                salt=salt,
                lang=lang,
            )
        heading = (titles or {}).get(acc, acc)
        row[0].set_title(
            str(heading), loc="left", fontproperties=font, fontsize=12, parse_math=False
        )
        if org_charts:
            row[1].set_title(t("stakeholders.chart_title", lang), loc="left", fontproperties=font)
    return fig


__all__ = ["STANCE_COLOURS", "org_chart", "stakeholder_map", "stakeholder_panels"]
