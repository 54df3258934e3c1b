"""Account-plan charts: KPI cards, revenue history, product lines."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from kam_analysis.core.i18n import t
from kam_analysis.report.charts.base import FittedText, place_legend
from kam_analysis.report.style import _new_ax, _plain, display_width, money_formatter, wrap_label

CARD_STRIPE_COLOURS: dict[str, str] = {
    "on_track": "#1a9641",
    "at_risk": "#fdae61",
    "off_track": "#d7191c",
}
"""Stripe colour of a :func:`kpi_cards` card by status; any other status is grey."""

_NEUTRAL_STRIPE = "#9e9e9e"


def kpi_cards(
    cards: Sequence[Mapping[str, Any]],
    *,
    ncols: int = 4,
    ax: Axes | None = None,
    card_height: float = 1.05,
    title: str | None = None,
) -> Axes:
    """Headline numbers as a grid of cards: label, large value, small note.

    Parameters
    ----------
    cards : sequence of mappings
        One mapping per card with ``label`` and ``value`` (text, already
        formatted, e.g. with :func:`fmt_money`), optional ``note`` (a second
        line) and ``status`` (``on_track``, ``at_risk``, ``off_track``: the
        colour of the stripe on the left of the card, see
        :data:`CARD_STRIPE_COLOURS`; anything else is grey).
    ncols : int, default 4
        Cards per row; rows follow in reading order.
    ax : Axes, optional
        Drawn into one Axes (axis switched off); a new full-width figure of
        ``rows x card_height`` inches when omitted.
    card_height : float, default 1.05
        Inches per row of a new figure.
    title : str, optional

    Returns
    -------
    Axes
        ``ax.patches`` holds two rectangles per card (card, stripe);
        ``ax.texts`` holds the label, value and note (when given) of each card,
        in card order, each a :class:`~kam_analysis.report.charts.base.FittedText`
        kept inside its card when drawn (smaller type, then the label or note on
        two lines). Data text is drawn as typed (``$`` escaped).

    Raises
    ------
    ValueError
        For no cards, ``ncols < 1`` or a card without ``label`` or ``value``.
    """
    from matplotlib.patches import Rectangle

    cards = list(cards)
    if not cards:
        raise ValueError("kpi_cards: no cards given")
    if int(ncols) < 1:
        raise ValueError(f"kpi_cards: ncols must be >= 1, got {ncols}")
    for i, card in enumerate(cards):
        missing = [k for k in ("label", "value") if k not in card]
        if missing:
            raise ValueError(f"kpi_cards: card {i} lacks {missing}; keys: {sorted(card)}")
    ncols = min(int(ncols), len(cards))
    nrows = math.ceil(len(cards) / ncols)
    ax = _new_ax(ax, height=nrows * card_height + (0.3 if title else 0.0))
    ax.set_axis_off()
    ax.set_xlim(0, ncols)
    ax.set_ylim(0, nrows)
    gap = 0.06
    for i, card in enumerate(cards):
        row, col = divmod(i, ncols)
        x0, y0 = col + gap / 2, nrows - row - 1 + gap / 2
        w, h = 1 - gap, 1 - gap
        ax.add_patch(Rectangle((x0, y0), w, h, facecolor="#f5f5f5", edgecolor="#dddddd", lw=0.8))
        colour = CARD_STRIPE_COLOURS.get(str(card.get("status")), _NEUTRAL_STRIPE)
        ax.add_patch(Rectangle((x0, y0), 0.025, h, facecolor=colour, edgecolor="none"))
        left, right = x0 + 0.07, x0 + w - 0.02
        # text, height (share of the card), half band, font size, smallest size, colour, wraps
        lines = [
            (card["label"], 0.80, 0.14, 9.5, 7.0, "0.3", True),
            (card["value"], 0.48, 0.18, 15.0, 9.0, "0.1", False),
        ]
        note = card.get("note")
        if note is not None and str(note) != "":
            lines.append((note, 0.17, 0.13, 8.5, 6.5, "0.35", True))
        for text, at, half, size, smallest, colour, wraps in lines:
            y = y0 + h * at
            plain = _plain(text)
            two_lines = _two_lines(plain) if wraps else plain
            ax.add_artist(  # shrinks to the card's width when drawn, else two lines; never left out
                FittedText(
                    left,
                    y,
                    plain,
                    box=(left, y - h * half, right, y + h * half),
                    alternatives=[two_lines] if "\n" in two_lines else [],
                    min_size=smallest,
                    pad=0.0,
                    omit=False,
                    comfort=0.85,
                    fontsize=size,
                    color=colour,
                    va="center",
                )
            )
    if title:
        ax.set_title(_plain(title))
    return ax


def _two_lines(text: str) -> str:
    """``text`` on two lines of about equal width (:func:`wrap_label`), if it can be broken."""
    width = display_width(text)
    for limit in range(math.ceil(width / 2), width + 1):
        wrapped = wrap_label(text, limit)
        if wrapped.count("\n") <= 1:
            return wrapped
    return text


def month_axis(axis, lang: str = "en") -> None:
    """Date ticks for a monthly axis: month names, the year at each January.

    English uses matplotlib's concise labels (``Jul``, ``2025``); Japanese
    uses ``7月`` and ``2025年`` (strftime month names are English only).

    Parameters
    ----------
    axis : matplotlib.axis.Axis
        ``ax.xaxis`` of a plot whose x values are dates.
    lang : str, default "en"
    """
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    axis.set_major_locator(locator)
    if lang != "ja":
        axis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        return

    def label(x: float, _pos: int | None = None) -> str:
        day = mdates.num2date(x)
        return f"{day.year}年" if day.month == 1 else f"{day.month}月"

    axis.set_major_formatter(FuncFormatter(label))


def revenue_history(
    monthly: pd.DataFrame,
    *,
    month: str = "month",
    revenue: str = "revenue",
    gross_profit: str | None = "gross_profit",
    ax: Axes | None = None,
    lang: str = "en",
    currency: str = "JPY",
    title: str | None = None,
) -> Axes:
    """Monthly revenue as bars with gross profit as a line.

    Parameters
    ----------
    monthly : DataFrame
        One row per month: ``month`` (dates), ``revenue`` and optionally
        ``gross_profit`` (numbers; NaN months are drawn as gaps).
    month, revenue, gross_profit : str
        Column names; ``gross_profit=None`` draws revenue only.
    ax : Axes, optional
    lang, currency : str
        Legend language; money axis format.
    title : str, optional

    Returns
    -------
    Axes
        ``ax.patches`` holds one bar per month; ``ax.lines`` the gross-profit line.

    Raises
    ------
    KeyError
        For a missing column.
    ValueError
        For an empty frame.
    """
    cols = [c for c in (month, revenue, gross_profit) if c is not None]
    missing = [c for c in cols if c not in monthly.columns]
    if missing:
        raise KeyError(f"revenue_history: column(s) {missing} not in the frame")
    if monthly.empty:
        raise ValueError("revenue_history: no months to draw")
    ax = _new_ax(ax)
    x = pd.to_datetime(monthly[month])
    ax.bar(
        x,
        monthly[revenue].to_numpy(dtype=float),
        width=20,
        color="C0",
        alpha=0.75,
        label=t("axis.revenue", lang),
    )
    if gross_profit is not None:
        ax.plot(
            x,
            monthly[gross_profit].to_numpy(dtype=float),
            color="C1",
            lw=2,
            marker="o",
            ms=3,
            label=t("axis.gross_profit", lang),
        )
    month_axis(ax.xaxis, lang)
    ax.yaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.grid(axis="x", visible=False)
    if title:
        ax.set_title(_plain(title))
    place_legend(ax, loc="upper left")
    return ax


def product_line_bars(
    df: pd.DataFrame,
    *,
    label: str = "product_line",
    bought: str = "revenue_12m",
    whitespace: str = "whitespace_value",
    ax: Axes | None = None,
    lang: str = "en",
    currency: str = "JPY",
    title: str | None = None,
) -> Axes:
    """Per product line: what the account buys (solid) and its whitespace (hatched).

    Parameters
    ----------
    df : DataFrame
        One row per product line with ``label`` (text), ``bought`` and
        ``whitespace`` (amounts >= 0, e.g. from
        :func:`kam_analysis.actions.product_line_view`); drawn top-down in row order.
    label, bought, whitespace : str
        Column names.
    ax : Axes, optional
    lang, currency : str
    title : str, optional

    Returns
    -------
    Axes
        Two bar containers in ``ax.containers`` (bought, whitespace), one bar
        per row each. The legend sits in a corner where it covers no bar, else
        below the axis (:func:`~kam_analysis.report.charts.base.place_legend`).

    Raises
    ------
    KeyError
        For a missing column.
    ValueError
        For an empty frame or negative amounts.
    """
    missing = [c for c in (label, bought, whitespace) if c not in df.columns]
    if missing:
        raise KeyError(f"product_line_bars: column(s) {missing} not in the frame")
    if df.empty:
        raise ValueError("product_line_bars: no product lines to draw")
    b = df[bought].to_numpy(dtype=float)
    w = df[whitespace].to_numpy(dtype=float)
    if (np.nan_to_num(b) < 0).any() or (np.nan_to_num(w) < 0).any():
        raise ValueError("product_line_bars: amounts must be >= 0")
    ax = _new_ax(ax, height=max(2.5, 0.38 * len(df) + 1.2))
    y = np.arange(len(df))[::-1]
    ax.barh(y, np.nan_to_num(b), color="C0", label=t("plan.legend.bought", lang))
    ax.barh(
        y,
        np.nan_to_num(w),
        left=np.nan_to_num(b),
        color="white",
        edgecolor="C2",
        hatch="///",
        lw=1.0,
        label=t("plan.legend.whitespace", lang),
    )
    from matplotlib.ticker import MaxNLocator

    ax.set_yticks(y, [_plain(v) for v in df[label]])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.xaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    place_legend(ax, loc="lower right")  # below the axis when every corner covers a bar
    return ax


OBJECTIVE_COLOURS: dict[str, str] = {
    "achieved": "#1a9641",
    "on_track": "#a6d96a",
    "at_risk": "#fdae61",
    "missed": "#d7191c",
    "planned": "#9ecae1",
    "dropped": "#bdbdbd",
    "no_data": "#e0e0e0",
}
"""Bar colour of :func:`objective_roadmap` by assessed status (``objectives.ASSESSED_STATUSES``)."""


def _roadmap_span(
    start: pd.Series, due: pd.Series, as_of: pd.Timestamp, years: tuple[int, int]
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """x range: a year of history, then at least ``years[0]`` and at most ``years[1]`` ahead."""
    lo = min(start.min(), as_of - pd.DateOffset(years=1))
    hi = max(due.max(), as_of + pd.DateOffset(years=years[0]))
    return lo - pd.Timedelta(days=30), min(hi, as_of + pd.DateOffset(years=years[1]))


def objective_roadmap(
    progress: pd.DataFrame,
    *,
    as_of,
    next_review=None,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
    years: tuple[int, int] = (3, 5),
) -> Axes:
    """The plan's roadmap: one bar per objective from start to due date, coloured by status.

    Parameters
    ----------
    progress : DataFrame
        :func:`kam_analysis.objectives.objective_progress` rows (``objective``,
        ``start_date``, ``due_date``, ``assessed``, ``progress``), drawn
        top-down in row order. The part of a bar up to the measured progress
        is solid, the rest light.
    as_of : date-like
        Drawn as a solid vertical line.
    next_review : date-like, optional
        The next review (dashed line).
    ax : Axes, optional
    lang : str
    title : str, optional
    years : (int, int)
        The axis shows at least the first and at most the second number of
        years after ``as_of`` (and one year before it).

    Returns
    -------
    Axes
        One bar per row in ``ax.containers[0]``.

    Raises
    ------
    KeyError
        For a missing column.
    ValueError
        For an empty frame.
    """
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch

    need = ("objective", "start_date", "due_date", "assessed", "progress")
    missing = [c for c in need if c not in progress.columns]
    if missing:
        raise KeyError(f"objective_roadmap: column(s) {missing} not in the frame")
    if progress.empty:
        raise ValueError("objective_roadmap: no objectives to draw")
    as_of = pd.Timestamp(as_of)
    start = pd.to_datetime(progress["start_date"])
    due = pd.to_datetime(progress["due_date"])
    lo, hi = _roadmap_span(start, due, as_of, years)
    ax = _new_ax(ax, height=max(2.4, 0.42 * len(progress) + 1.3))
    y = np.arange(len(progress))[::-1]
    x0 = mdates.date2num(start.clip(lower=lo))
    x1 = mdates.date2num(due.clip(upper=hi))
    colours = [OBJECTIVE_COLOURS.get(s, _NEUTRAL_STRIPE) for s in progress["assessed"]]
    ax.barh(y, x1 - x0, left=x0, height=0.55, color=colours, alpha=0.45, edgecolor=colours)
    done = np.clip(progress["progress"].to_numpy(dtype=float), 0, 1)
    width = np.where(np.isfinite(done), (mdates.date2num(due) - mdates.date2num(start)) * done, 0)
    ax.barh(y, np.minimum(width, x1 - x0), left=x0, height=0.55, color=colours)
    ax.axvline(mdates.date2num(as_of), color="#333333", lw=1.2)
    ax.text(
        mdates.date2num(as_of), len(progress) - 0.4, t("plan.roadmap.as_of", lang),
        ha="center", va="bottom", fontsize="small",
    )  # fmt: skip
    handles = [
        Patch(color=OBJECTIVE_COLOURS[s], label=t(f"plan.objective_status.{s}", lang))
        for s in OBJECTIVE_COLOURS
        if s in set(progress["assessed"])
    ]
    if next_review is not None:
        x = mdates.date2num(pd.Timestamp(next_review))
        ax.axvline(x, color="C0", lw=1.2, ls="--", label=t("plan.roadmap.next_review", lang))
        handles.append(ax.get_lines()[-1])
    labels = [wrap_label(_plain(v), 28) for v in progress["objective"]]
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, len(progress) - 0.1)
    ax.set_xlim(mdates.date2num(lo), mdates.date2num(hi))
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4,
              fontsize="small", frameon=False)  # fmt: skip
    return ax
