"""General charts: contributions, Pareto curve, fan chart, heat map, labelled scatter.

Also the legibility helpers the charts share: :class:`FittedText` (text that
fits its box when drawn), :func:`wrap_xtick_labels` and :func:`place_legend`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PathCollection, PolyCollection, QuadMesh
from matplotlib.legend import Legend
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox, ScaledTranslation

from kam_analysis.core.formatting import fmt_money, fmt_pct
from kam_analysis.core.i18n import label_for, t
from kam_analysis.report.style import (
    _new_ax,
    _plain,
    money_formatter,
    pct_formatter,
    shorten_label,
    wrap_label,
)
from kam_analysis.report.tables import _column_formatter

# --------------------------------------------------------------------------- fitted text


def _inside(inner: Bbox, outer: Bbox, eps: float = 0.01) -> bool:
    return (
        inner.x0 >= outer.x0 - eps
        and inner.x1 <= outer.x1 + eps
        and inner.y0 >= outer.y0 - eps
        and inner.y1 <= outer.y1 + eps
    )


_EXTENT_CACHE: dict[tuple, tuple[float, float, float, float]] = {}


class _FitGroup:
    """Texts fitted together: one common font size, the largest at which all fit."""

    def __init__(self) -> None:
        self.members: list[FittedText] = []
        self.omitted = 0
        self.verify = True  # off during layout passes made only to measure
        self._key: tuple | None = None

    def fit(self, renderer: Any, *, verify: bool = True) -> None:
        """Size every member to its box for the current layout.

        The members' texts are tried form by form (the full text, then each
        shorter alternative, the same form for every member so that a table
        reads alike): the first form at which all of them fit at a comfortable
        size wins, else the form that allows the largest size down to the
        smallest one, else the shortest form, leaving out the members that do
        not fit even so. Sizes come from each text's extent measured once at
        its base size (extents scale with the font size); with ``verify`` the
        members with little room left are measured again at their final size
        and shrunk by 0.25 pt steps until they fit, so that a drawn text never
        leaves its box.
        """
        if not self.members or renderer is None:
            return
        verify = verify and self.verify
        ax = self.members[0].axes
        layout = (
            renderer.points_to_pixels(72.0),
            *(ax.bbox.bounds if ax is not None else ()),
            *(ax.viewLim.bounds if ax is not None else ()),
        )
        if self._key is not None and self._key[0] == layout and (self._key[1] or not verify):
            return
        self._key = (layout, verify)
        members = self.members
        comfortable = max(max(m._min_size, m._comfort * m._base_size) for m in members)
        forms = max(len(m._candidates) for m in members)
        chosen: tuple[int, list[float | None]] | None = None
        best_size = -1.0
        for k in range(forms):
            limits = [m._limit(renderer, m._candidate(k)) for m in members]
            if any(lim is None for lim in limits):
                continue
            common = min(lim for lim in limits if lim is not None)
            if common >= comfortable:
                chosen = (k, limits)
                break
            if common > best_size + 0.25:  # a shorter form must buy a visibly larger size
                chosen, best_size = (k, limits), common
        if chosen is None:  # some member never fits: the shortest form, without those
            k = forms - 1
            chosen = (k, [m._limit(renderer, m._candidate(k)) for m in members])
        k, limits = chosen
        fitting = [lim for lim in limits if lim is not None]
        common = min(fitting) if fitting else 0.0
        self.omitted = 0
        for m, limit in zip(members, limits, strict=True):
            choice: tuple[str, float] | None = None
            if limit is not None:
                choice = (m._candidate(k), min(common, m._base_size))
                if verify and choice[1] > 0.95 * limit:
                    choice = m._verified(renderer, *choice)
            if choice is not None:
                m._show(*choice)
            elif m._omit:
                m._show("", m._min_size)
                self.omitted += 1
            else:
                m._show(m._candidate(k), m._min_size)


class FittedText(Text):
    """Text that fits inside a box when drawn, measured in display coordinates.

    At every draw (after the layout has fixed the size of the axes) the text is
    measured with the renderer against its box: it shrinks from its font size,
    down to ``comfort`` times that size before a shorter form from
    ``alternatives`` (compact units, fewer decimals, two lines) is shown
    instead, and down to ``min_size`` when no shorter form does better; when
    nothing fits, the text is left out (``omit=True``; the group counts it in
    ``omitted``) or drawn at ``min_size`` (``omit=False``).

    Texts sharing a ``group`` get one common size and form, the largest at
    which every one of them fits (a heat map's cells read as one table).

    Parameters
    ----------
    x, y : float
        Position, in the coordinates of ``transform`` (default data).
    text : str
    box : (x0, y0, x1, y1)
        The box to stay in, in the same coordinates as the position.
    alternatives : sequence of str, optional
    min_size : float, default 7
        Smallest font size in points.
    pad : float, default 2
        Margin inside the box, in points (half of it at the top and bottom).
    omit : bool, default True
    comfort : float, default 0.75
        Share of the font size below which a shorter form is preferred.
    group : optional
        A shared fitting group (see :func:`heatmap`); default a group of one.
    **kwargs
        :class:`matplotlib.text.Text` properties (``ha``, ``va``, ``fontsize``, ...).
    """

    def __init__(
        self,
        x: float,
        y: float,
        text: str,
        *,
        box: Sequence[float],
        alternatives: Sequence[str] = (),
        min_size: float = 7.0,
        pad: float = 2.0,
        omit: bool = True,
        comfort: float = 0.75,
        group: _FitGroup | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(x, y, text, **kwargs)
        self._comfort = float(comfort)
        self._box = tuple(float(v) for v in box)
        self._candidates = [str(text), *(a for a in map(str, alternatives) if a != str(text))]
        self._base_size = float(self.get_fontsize())
        self._min_size = min(float(min_size), self._base_size)
        self._pad = float(pad)
        self._omit = omit
        self._group = group if group is not None else _FitGroup()
        self._group.members.append(self)
        self.set_in_layout(False)  # fitted inside its box: never widens the layout

    def _candidate(self, form: int) -> str:
        """The text in form ``form`` (0 = full), or in its shortest form when it has fewer."""
        return self._candidates[min(form, len(self._candidates) - 1)]

    @property
    def omitted(self) -> bool:
        """True when the last fit left the text out."""
        return self._omit and self.get_text() == "" and self._candidates[0] != ""

    def _box_px(self, renderer: Any) -> Bbox:
        x0, y0, x1, y1 = self._box
        corners = self.get_transform().transform([(x0, y0), (x1, y1)])
        box = Bbox([corners.min(axis=0), corners.max(axis=0)])
        pad = renderer.points_to_pixels(self._pad)
        return Bbox.from_extents(box.x0 + pad, box.y0 + pad / 2, box.x1 - pad, box.y1 - pad / 2)

    def _show(self, text: str, size: float) -> None:
        if self.get_text() != text:
            self.set_text(text)
        if self.get_fontsize() != size:
            self.set_fontsize(size)

    def _base_extent(self, renderer: Any, text: str) -> tuple[float, float, float, float]:
        """Extent of ``text`` at the base size around the anchor, in points (cached)."""
        key = (
            text,
            self._base_size,
            tuple(self.get_fontfamily()),
            self.get_fontweight(),
            self.get_fontstyle(),
            self.get_horizontalalignment(),
            self.get_verticalalignment(),
            self.get_rotation(),
            self.get_linespacing(),
        )
        if key not in _EXTENT_CACHE:
            shown = (self.get_text(), self.get_fontsize())
            self._show(text, self._base_size)
            box = Text.get_window_extent(self, renderer)
            self._show(*shown)
            ax, ay = self.get_transform().transform(self.get_unitless_position())
            px = renderer.points_to_pixels(1.0)
            _EXTENT_CACHE[key] = (
                (box.x0 - ax) / px,
                (box.y0 - ay) / px,
                (box.x1 - ax) / px,
                (box.y1 - ay) / px,
            )
        return _EXTENT_CACHE[key]

    def _limit(self, renderer: Any, text: str) -> float | None:
        """The largest size (0.25 pt steps, at most the base size) at which ``text`` fits."""
        if text == "":
            return self._base_size
        box = self._box_px(renderer)
        ax, ay = self.get_transform().transform(self.get_unitless_position())
        px = renderer.points_to_pixels(1.0) / self._base_size  # pixels per point of extent per pt
        dx0, dy0, dx1, dy1 = self._base_extent(renderer, text)
        limit = self._base_size
        for offset, room in (
            (-dx0, ax - box.x0),
            (dx1, box.x1 - ax),
            (-dy0, ay - box.y0),
            (dy1, box.y1 - ay),
        ):
            if offset > 0:
                limit = min(limit, room / (offset * px))
        size = math.floor(limit * 4) / 4
        return size if size >= self._min_size else None

    def _verified(self, renderer: Any, text: str, size: float) -> tuple[str, float] | None:
        """Measure again where little room is left; shrink until the text fits."""
        box = self._box_px(renderer)
        while size >= self._min_size - 1e-9:
            self._show(text, size)
            if _inside(Text.get_window_extent(self, renderer), box):
                return text, size
            size -= 0.25
        return None

    def draw(self, renderer: Any) -> None:
        if self.get_visible():
            self._group.fit(renderer)
        super().draw(renderer)

    def get_window_extent(self, renderer: Any = None, dpi: float | None = None) -> Bbox:
        fig = self.get_figure(root=True)
        if self.get_visible() and fig is not None:
            self._group.fit(renderer if renderer is not None else fig._get_renderer())
        return super().get_window_extent(renderer, dpi)


def _omitted_note_text(lang: str) -> str:
    return t("chart.values_omitted", lang)


class _OmissionNote(Artist):
    """A note under the x axis, drawn only while texts of ``group`` are left out.

    Not a ``Text`` itself, so ``ax.texts`` keeps holding the cell values only.
    """

    def __init__(self, ax: Axes, group: _FitGroup, message: str) -> None:
        super().__init__()
        self._ax = ax
        self._group = group
        self._note = Annotation(
            message,
            xy=(0.0, 0.0),
            xycoords=self._below_axis,
            xytext=(0.0, -3.0),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=8.5,
            color="0.35",
            annotation_clip=False,
        )

    def _below_axis(self, renderer: Any) -> Bbox:
        ax = self._ax
        below = ax.xaxis.get_tightbbox(renderer)
        y0 = min(ax.bbox.y0, below.y0) if below is not None else ax.bbox.y0
        return Bbox.from_extents(ax.bbox.x0, y0, ax.bbox.x1, y0 + 1.0)

    def _shown(self, renderer: Any) -> bool:
        fig = self.get_figure(root=True)
        if fig is None or not self.get_visible():
            return False
        if self._note.get_figure(root=True) is None:
            self._note.set_figure(fig)
        self._group.fit(renderer if renderer is not None else fig._get_renderer(), verify=False)
        return self._group.omitted > 0

    @property
    def text(self) -> str:
        """The note as drawn: empty while every value is shown."""
        fig = self.get_figure(root=True)
        return self._note.get_text() if fig is not None and self._shown(None) else ""

    def draw(self, renderer: Any) -> None:
        if self._shown(renderer):
            self._note.draw(renderer)
        self.stale = False

    def get_window_extent(self, renderer: Any = None) -> Bbox:
        if self._shown(renderer):
            return self._note.get_window_extent(renderer)
        return Bbox.from_bounds(0, 0, 0, 0)

    def get_tightbbox(self, renderer: Any = None) -> Bbox | None:
        return self._note.get_window_extent(renderer) if self._shown(renderer) else None


# --------------------------------------------------------------------------- labels, legends


def _layout_renderer(ax: Axes) -> Any:
    """Run the figure's layout (a draw without output); return its renderer."""
    fig = ax.get_figure(root=True)
    fig.draw_without_rendering()
    return fig._get_renderer()


def wrap_xtick_labels(
    ax: Axes, *, max_lines: int = 3, fill: float = 0.95, rotation: float = 45.0
) -> str:
    """Keep category labels on the x axis apart: wrap them to the tick spacing, else rotate.

    The figure is laid out first; each label is then wrapped (:func:`wrap_label`:
    CJK by width with kinsoku, Latin at spaces) to ``fill`` of the distance
    between neighbouring ticks, measured with the renderer in the label's font.
    When a word is still wider than that, or a label needs more than
    ``max_lines`` lines, all labels are drawn unwrapped at ``rotation`` degrees.

    Parameters
    ----------
    ax : Axes
        With category ticks on the x axis (a heat map, a bar chart).
    max_lines : int, default 3
    fill : float, default 0.95
        Share of the tick spacing a label may use.
    rotation : float, default 45

    Returns
    -------
    str
        ``"wrapped"``, ``"rotated"`` or ``"unchanged"`` (no labels).
    """
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    locs = np.asarray(ax.get_xticks(), dtype=float)
    if not labels or not any(labels) or len(labels) != len(locs):
        return "unchanged"
    originals = [label.replace("\n", " ") for label in labels]
    renderer = _layout_renderer(ax)
    prop = ax.get_xticklabels()[0].get_fontproperties()
    xs = np.sort(ax.transData.transform(np.column_stack([locs, np.zeros_like(locs)]))[:, 0])
    spacing = float(np.min(np.diff(xs))) if len(xs) > 1 else float(ax.bbox.width)
    avail = spacing * fill - renderer.points_to_pixels(2.0)

    def measure(text: str) -> float:
        return float(renderer.get_text_width_height_descent(text, prop, ismath=False)[0])

    wrapped = [wrap_label(label, avail, measure=measure) for label in originals]
    fits = all(
        len(w.split("\n")) <= max_lines and all(measure(line) <= avail for line in w.split("\n"))
        for w in wrapped
    )
    if fits:
        ax.set_xticks(locs, wrapped, rotation=0, ha="center", rotation_mode="default")
        return "wrapped"
    ax.set_xticks(locs, originals, rotation=rotation, ha="right", rotation_mode="anchor")
    return "rotated"


def _plot_obstacles(ax: Axes, renderer: Any):
    """What a legend must not cover, in display coordinates: boxes, paths, filled areas, points."""
    boxes: list[Bbox] = []
    paths: list[Any] = []
    areas: list[Any] = []
    points: list[np.ndarray] = []
    for patch in ax.patches:
        if not patch.get_visible():
            continue
        if isinstance(patch, Rectangle):
            box = patch.get_bbox().transformed(patch.get_data_transform())
            if box.width > 0.5 and box.height > 0.5:
                boxes.append(box)
        else:
            areas.append(patch.get_transform().transform_path(patch.get_path()))
    for line in ax.lines:
        if line.get_visible():
            paths.append(line.get_transform().transform_path(line.get_path()))
    for coll in ax.collections:
        if not coll.get_visible() or isinstance(coll, QuadMesh):
            continue
        if isinstance(coll, PathCollection):
            offsets = np.asarray(coll.get_offsets(), dtype=float)
            if len(offsets):
                points.append(coll.get_offset_transform().transform(offsets))
        elif isinstance(coll, LineCollection):
            tr = coll.get_transform()
            paths.extend(tr.transform_path(path) for path in coll.get_paths())
        elif isinstance(coll, PolyCollection):
            tr = coll.get_transform()
            areas.extend(tr.transform_path(path) for path in coll.get_paths())
    for text in ax.texts:
        if text.get_visible() and text.get_text():
            boxes.append(text.get_window_extent(renderer))
    return boxes, paths, areas, points


def _covers(box: Bbox, obstacles) -> bool:
    boxes, paths, areas, points = obstacles
    if any(box.overlaps(b) for b in boxes):
        return True
    for path in paths:
        if box.count_contains(path.vertices) or path.intersects_bbox(box, filled=False):
            return True
    if any(path.intersects_bbox(box, filled=True) for path in areas):
        return True
    return any(box.count_contains(p) for p in points)


def place_legend(
    ax: Axes,
    *,
    loc: str = "upper right",
    alternatives: Sequence[str] = ("upper right", "upper left", "lower right", "lower left"),
    outside: str = "below",
    **kwargs: Any,
) -> Legend | None:
    """A legend inside the plot where it covers no data, else outside the plotted area.

    The figure is laid out first; the legend is tried at ``loc`` and then at
    each of ``alternatives``; the first place where it covers no bar, line,
    point, filled area or text (measured in display coordinates) is kept.
    When there is none, it goes ``"below"`` the x axis (its tick labels and
    title; entries side by side when they fit the width) or to the ``"right"``
    of the axes.

    Parameters
    ----------
    ax : Axes
    loc : str, default "upper right"
        The preferred place inside.
    alternatives : sequence of str
        Further places inside, in order.
    outside : {"below", "right"}, default "below"
    **kwargs
        Passed to ``ax.legend``.

    Returns
    -------
    Legend or None
        None when nothing has a label.
    """
    if outside not in ("below", "right"):
        raise ValueError(f"place_legend: outside must be 'below' or 'right', got {outside!r}")
    handles, _labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    legend = ax.legend(loc=loc, **kwargs)
    renderer = _layout_renderer(ax)
    obstacles = _plot_obstacles(ax, renderer)
    margin = renderer.points_to_pixels(5.0)
    for where in dict.fromkeys([loc, *alternatives]):
        legend.set_loc(where)
        if not _covers(legend.get_window_extent(renderer).padded(margin), obstacles):
            return legend
    fig = ax.get_figure(root=True)
    if outside == "right":
        legend.set_loc("upper left")
        legend.set_bbox_to_anchor((1.02, 1.0), transform=ax.transAxes)
        return legend
    axis_box = ax.xaxis.get_tightbbox(renderer)
    below_px = ax.bbox.y0 - axis_box.y0 if axis_box is not None else 0.0
    gap = (max(below_px, 0.0) + renderer.points_to_pixels(4.0)) / fig.dpi
    legend.set_loc("upper center")
    legend.set_bbox_to_anchor(
        (0.5, 0.0), transform=ax.transAxes + ScaledTranslation(0.0, -gap, fig.dpi_scale_trans)
    )
    legend.set_ncols(len(handles))
    if legend.get_window_extent(renderer).width > ax.bbox.width * 1.2:
        legend.set_ncols(1)
    return legend


def _numeric_frame(df: pd.DataFrame, name: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValueError(f"{name}: expected a non-empty DataFrame")
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise ValueError(f"{name}: column(s) {bad} are not numeric")
    return df


def bar_contributions(
    df: pd.DataFrame,
    *,
    label: str | None = None,
    top_n: int | None = 20,
    ax: Axes | None = None,
    lang: str = "en",
    label_prefix: str = "criterion.",
    title: str | None = None,
    colors: Mapping[str, Any] | None = None,
) -> Axes:
    """Stacked horizontal bars of score contributions, largest total at the top.

    Parameters
    ----------
    df : DataFrame
        One row per account; one numeric column per criterion holding its
        contribution to the score (weight × normalised value). Row labels come
        from the index, or from the column ``label`` (not stacked).
    label : str, optional
        Column with the account labels.
    top_n : int or None, default 20
        Keep the accounts with the largest totals.
    ax : Axes, optional
    lang : str, default "en"
    label_prefix : str, default "criterion."
        Translation prefix for the legend entries (see :func:`label_for`).
    title : str, optional
    colors : mapping, optional
        Criterion column -> matplotlib colour (e.g. from :func:`family_colors`);
        default the colour cycle ``C0 .. C9``.

    Returns
    -------
    Axes
        One bar segment per (account, criterion); negative contributions are
        stacked to the left of zero.

    Raises
    ------
    ValueError
        For an empty frame or non-numeric criterion columns.
    """
    data = df.set_index(label) if label is not None else df
    data = _numeric_frame(data, "bar_contributions")
    order = data.sum(axis=1).sort_values(ascending=False, kind="stable").index
    data = data.loc[order]
    if top_n is not None:
        data = data.iloc[:top_n]
    height = max(2.5, 0.32 * len(data) + 1.2)
    ax = _new_ax(ax, height=height)
    y = np.arange(len(data))[::-1]  # first row at the top
    pos_left = np.zeros(len(data))
    neg_left = np.zeros(len(data))
    for i, col in enumerate(data.columns):
        values = data[col].to_numpy(dtype=float)
        values = np.nan_to_num(values)
        left = np.where(values >= 0, pos_left, neg_left)
        ax.barh(
            y,
            values,
            left=left,
            color=(colors or {}).get(col, f"C{i % 10}"),
            label=label_for(col, lang, prefix=label_prefix),
        )
        pos_left += np.clip(values, 0, None)
        neg_left += np.clip(values, None, 0)
    ax.set_yticks(y, [_plain(v) for v in data.index])
    ax.set_xlabel(t("axis.score_contribution", lang))
    ax.axvline(0, color="0.3", lw=0.8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


def pareto_curve(
    values: pd.Series | Sequence[float] | np.ndarray,
    *,
    mark: float | None = 0.2,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Cumulative share of revenue against share of accounts (largest first).

    Parameters
    ----------
    values : Series or array
        Revenue (or profit) per account, non-negative.
    mark : float or None, default 0.2
        Highlight the share held by the top ``mark`` fraction of accounts
        (the "80/20" check); the annotation text is translated.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        The first line holds the curve, from (0, 0) to (1, 1).

    Raises
    ------
    ValueError
        For negative, missing-only or all-zero values.
    """
    v = pd.Series(values, dtype=float).dropna().to_numpy()
    if v.size == 0:
        raise ValueError("pareto_curve: no values")
    if (v < 0).any():
        raise ValueError(f"pareto_curve: {int((v < 0).sum())} negative value(s); use revenue ≥ 0")
    total = v.sum()
    if total <= 0:
        raise ValueError("pareto_curve: all values are zero")
    v = np.sort(v)[::-1]
    x = np.arange(0, v.size + 1) / v.size
    y = np.concatenate([[0.0], np.cumsum(v) / total])
    ax = _new_ax(ax)
    ax.plot(x, y, color="C0", lw=2)
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label=t("pareto.equality", lang))
    if mark is not None:
        if not 0 < mark < 1:
            raise ValueError(f"pareto_curve: mark must be between 0 and 1, got {mark}")
        k = math.ceil(mark * v.size)
        share = y[k]
        ax.plot([x[k], x[k]], [0, share], color="C3", ls="--", lw=1)
        ax.plot([0, x[k]], [share, share], color="C3", ls="--", lw=1)
        ax.annotate(
            t("pareto.annotation", lang, accounts=fmt_pct(mark, 0), share=fmt_pct(share, 0)),
            xy=(x[k], share),
            xytext=(10, -25),
            textcoords="offset points",
            color="C3",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.xaxis.set_major_formatter(pct_formatter())
    ax.yaxis.set_major_formatter(pct_formatter())
    ax.set_xlabel(t("axis.share_of_accounts", lang))
    ax.set_ylabel(t("axis.cumulative_share", lang))
    ax.legend(loc="lower right")
    if title:
        ax.set_title(_plain(title))
    return ax


def _quantile_levels(columns: pd.Index) -> dict[float, Any]:
    levels: dict[float, Any] = {}
    for col in columns:
        try:
            q = float(col)
        except (TypeError, ValueError):
            raise ValueError(
                f"fan_chart: column {col!r} is not a quantile level; name columns 0.05, 0.5, 0.95, ..."
            ) from None
        if not 0 < q < 1:
            raise ValueError(f"fan_chart: quantile level {q} is not between 0 and 1")
        levels[round(q, 6)] = col
    return levels


def fan_chart(
    quantiles_df: pd.DataFrame,
    *,
    actual: pd.Series | None = None,
    ax: Axes | None = None,
    lang: str = "en",
    currency: str | None = None,
    color: str = "C0",
    title: str | None = None,
) -> Axes:
    """A forecast fan: shaded quantile bands around the median, with history.

    Parameters
    ----------
    quantiles_df : DataFrame
        Index = time (dates or periods), columns = quantile levels as numbers in
        (0, 1), e.g. ``0.05, 0.25, 0.5, 0.75, 0.95``. Each level q < 0.5 with a
        matching 1 − q column becomes a band (inner bands darker); 0.5 is drawn
        as the median line.
    actual : Series, optional
        Observed history (index = time), drawn in black.
    ax : Axes, optional
    lang : str, default "en"
    currency : str, optional
        Format the y axis as money (compact).
    color : str, default "C0"
    title : str, optional

    Returns
    -------
    Axes
        ``ax.collections`` holds one band per quantile pair.

    Raises
    ------
    ValueError
        For column names that are not quantile levels, or no band and no median.
    """
    _numeric_frame(quantiles_df, "fan_chart")
    levels = _quantile_levels(quantiles_df.columns)
    pairs = sorted(q for q in levels if q < 0.5 and round(1 - q, 6) in levels)
    if not pairs and 0.5 not in levels:
        raise ValueError("fan_chart: need a median (0.5) or at least one pair q, 1 - q")
    ax = _new_ax(ax)
    x = quantiles_df.index
    for i, q in enumerate(pairs):  # outer bands first, lighter
        alpha = 0.15 + 0.35 * (i + 1) / len(pairs)
        ax.fill_between(
            x,
            quantiles_df[levels[q]].to_numpy(dtype=float),
            quantiles_df[levels[round(1 - q, 6)]].to_numpy(dtype=float),
            color=color,
            alpha=alpha,
            lw=0,
            label=t("axis.interval", lang, level=1 - 2 * q),
        )
    if 0.5 in levels:
        ax.plot(
            x,
            quantiles_df[levels[0.5]].to_numpy(dtype=float),
            color=color,
            lw=2,
            label=t("axis.median", lang),
        )
    if actual is not None:
        ax.plot(
            actual.index,
            actual.to_numpy(dtype=float),
            color="black",
            lw=1.5,
            label=t("axis.actual", lang),
        )
    if currency:
        ax.yaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.legend(loc="upper left")
    if title:
        ax.set_title(_plain(title))
    return ax


_DECIMALS = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)\.(\d+)(?![\d.,])")


def _fewer_decimals(text: str) -> str:
    """The numbers of a formatted value without decimals, where that changes them by < 0.5 %.

    ``"¥6,921.0万"`` -> ``"¥6,921万"``, ``"50.0%"`` -> ``"50%"``; ``"¥1.5億"``
    and ``"12.3%"`` are kept (``"¥2億"`` would misstate the value by a third).
    """

    def whole(match: re.Match[str]) -> str:
        number = float(f"{match.group(1).replace(',', '')}.{match.group(2)}")
        if number < 100 and match.group(2).strip("0"):
            return match.group(0)
        return f"{round(number):,d}" if "," in match.group(1) else str(round(number))

    return _DECIMALS.sub(whole, text)


def _shorter_texts(
    value: float, text: str, kind: str | Callable[[Any], str] | None, currency: str, lang: str
) -> list[str]:
    """Shorter forms of a cell's text, tried when it does not fit: compact units, then
    fewer decimals."""
    forms = [fmt_money(value, currency, compact=True, lang=lang)] if kind == "money" else []
    forms += [_fewer_decimals(form) for form in [text, *forms]]
    return [form for form in dict.fromkeys(forms) if form and form != text]


def _text_colour(rgba: Any) -> str:
    """Dark text on light cells, white on dark ones (seaborn's rule)."""
    rgb = np.asarray(mpl.colors.to_rgba(rgba)[:3])
    rgb = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return ".15" if float(rgb @ [0.2126, 0.7152, 0.0722]) > 0.408 else "w"


def heatmap(
    df: pd.DataFrame,
    *,
    fmt: str | Callable[[Any], str] | None = None,
    annot: bool | None = None,
    cmap: str = "Blues",
    center: float | None = None,
    currency: str = "JPY",
    lang: str = "en",
    ax: Axes | None = None,
    title: str | None = None,
    cbar: bool = True,
    min_fontsize: float = 7.0,
) -> Axes:
    """A heat map of a numeric table (e.g. account × product-line whitespace).

    Cell values are sized to their cells when the figure is drawn (see
    :class:`FittedText`): all of them share the largest font size, up to the
    report's, at which every value fits its cell, measured in display
    coordinates after the layout. Before the values get smaller than 3/4 of
    the report's size they are shown in a shorter form (``"money"`` in compact
    units, whole numbers where two or more digits remain: ``¥6,921万``), the
    same form in every cell; a value that does not fit even at
    ``min_fontsize`` is left out, and a note under the axis says so. Column
    names are wrapped to the cell width (CJK by width, Latin at spaces) or
    rotated when a word is wider than a cell (:func:`wrap_xtick_labels`); row
    names are horizontal. Missing cells are left blank, without grid lines.

    Parameters
    ----------
    df : DataFrame
        Numeric cells; index and columns become the axis labels.
    fmt : str or callable, optional
        Cell annotation format: ``"money"``, ``"money_compact"``, ``"pct"``,
        ``"int"``, ``"float"``, a format string or a function.
    annot : bool, optional
        Write the values in the cells; default when the table has ≤ 400 cells.
    cmap : str, default "Blues"
    center : float, optional
        Diverging colour map centre.
    currency, lang : str
        For money formats and the note on values left out.
    ax : Axes, optional
    title : str, optional
    cbar : bool, default True
    min_fontsize : float, default 7
        Smallest size of the cell values, in points.

    Returns
    -------
    Axes
        ``ax.texts`` holds one :class:`FittedText` per finite cell (row by row).
    """
    import seaborn as sns

    _numeric_frame(df, "heatmap")
    if annot is None:
        annot = df.size <= 400
    ax = _new_ax(ax, height=max(2.5, 0.35 * len(df) + 1.5))
    data = df.copy()
    data.index = [_plain(shorten_label(v)) for v in data.index]
    data.columns = [_plain(v) for v in data.columns]
    values = data.astype(float)
    sns.heatmap(values, annot=False, cmap=cmap, center=center, ax=ax, cbar=cbar, linewidths=0.5)
    ax.grid(False)  # no grid lines through blank (missing) cells
    ax.tick_params(axis="y", labelrotation=0)
    if annot:
        formatter = _column_formatter(fmt or "float", currency, lang)
        mesh = [c for c in ax.collections if isinstance(c, QuadMesh)][-1]
        mesh.update_scalarmappable()
        colours = mesh.get_facecolors()
        cells = values.to_numpy()
        group = _FitGroup()
        size = float(mpl.rcParams["font.size"])
        for (i, j), value in np.ndenumerate(cells):
            if not np.isfinite(value):
                continue  # blank, as seaborn leaves masked cells
            text = formatter(value)
            ax.add_artist(
                FittedText(
                    j + 0.5,
                    i + 0.5,
                    text,
                    box=(j, i, j + 1, i + 1),
                    alternatives=_shorter_texts(value, text, fmt, currency, lang),
                    min_size=min_fontsize,
                    group=group,
                    ha="center",
                    va="center",
                    fontsize=size,
                    color=_text_colour(colours[i * cells.shape[1] + j]),
                )
            )
        ax.add_artist(_OmissionNote(ax, group, _omitted_note_text(lang)))
    if title:
        ax.set_title(_plain(title))
    if annot:
        group.verify = False  # the layout pass below only measures the tick labels
    wrap_xtick_labels(ax)
    if annot:
        group.verify = True
    return ax


_LEADER = {
    "arrowstyle": "-",
    "color": "0.5",
    "lw": 0.5,
    "shrinkA": 0,
    "shrinkB": 2,
    "relpos": (0, 0.5),
}
"""The thin line joining a moved point label to its point."""


def scatter_labeled(
    df: pd.DataFrame,
    x: str,
    y: str,
    label: str,
    *,
    top_n: int = 10,
    rank_by: str | None = None,
    hue: str | None = None,
    hue_prefix: str | None = None,
    size: str | None = None,
    rasterize_above: int = 2000,
    lang: str = "en",
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """A scatter plot that names only the top-N points.

    Parameters
    ----------
    df : DataFrame
        Columns ``x``, ``y`` (numeric), ``label`` (text), optionally ``hue``
        (categories), ``size`` (numeric, scaled to marker area) and ``rank_by``.
    x, y, label : str
        Column names.
    top_n : int, default 10
        Number of points labelled, those with the largest ``rank_by`` (default ``y``).
    rank_by : str, optional
    hue : str, optional
        Categorical column; one colour and legend entry per category.
    hue_prefix : str, optional
        Translation prefix for the hue categories (e.g. ``"tier."``).
    size : str, optional
    rasterize_above : int, default 2000
        Draw the points as a bitmap when there are more of them (100k points
        stay a small, fast figure); labels and axes stay vector.
    lang : str, default "en"
    ax : Axes, optional
    title : str, optional

    Returns
    -------
    Axes
        ``ax.texts`` holds exactly ``min(top_n, len(df))`` labels.

    Raises
    ------
    KeyError
        For a missing column.
    """
    needed = [c for c in (x, y, label, rank_by, hue, size) if c is not None]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise KeyError(
            f"scatter_labeled: column(s) {missing} not in the frame; columns: {list(df.columns)}"
        )
    ax = _new_ax(ax)
    n = len(df)
    raster = n > rasterize_above
    alpha = 0.8 if n <= 500 else max(0.15, 0.8 * (500 / n) ** 0.3)
    if size is not None:
        s_raw = df[size].to_numpy(dtype=float)
        smax = np.nanmax(s_raw) if np.isfinite(s_raw).any() and np.nanmax(s_raw) > 0 else 1.0
        sizes = 10 + 190 * np.clip(np.nan_to_num(s_raw) / smax, 0, 1)
    else:
        sizes = np.full(n, 25.0 if n <= 2000 else 4.0)
    if hue is None:
        ax.scatter(df[x], df[y], s=sizes, alpha=alpha, rasterized=raster, lw=0)
    else:
        for i, (cat, idx) in enumerate(df.groupby(hue, sort=True, observed=True).indices.items()):
            name = label_for(cat, lang, prefix=hue_prefix) if hue_prefix else str(cat)
            ax.scatter(
                df[x].iloc[idx],
                df[y].iloc[idx],
                s=sizes[idx],
                alpha=alpha,
                rasterized=raster,
                lw=0,
                color=f"C{i % 10}",
                label=_plain(name),
            )
        ax.legend(title=_plain(label_for(hue, lang, prefix="axis.")))
    labels: list[Annotation] = []
    if top_n > 0 and n:
        rank = df[rank_by or y].to_numpy(dtype=float)
        order = np.argsort(np.where(np.isnan(rank), np.inf, -rank), kind="stable")
        order = order[~np.isnan(rank[order])][:top_n]
        for pos in order:
            note = ax.annotate(
                _plain(df[label].iloc[pos]),
                xy=(df[x].iloc[pos], df[y].iloc[pos]),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=9,
                arrowprops=dict(_LEADER),
            )
            note.arrow_patch.set_visible(False)  # shown if the label has to move
            labels.append(note)
    ax.set_xlabel(label_for(x, lang, prefix="axis."))
    ax.set_ylabel(label_for(y, lang, prefix="axis."))
    if title:
        ax.set_title(_plain(title))
    if len(labels) > 1:
        separate_labels(ax, labels)
    return ax


def separate_labels(ax: Axes, labels: Sequence[Annotation], *, gap: float = 1.0) -> int:
    """Move point labels down until no two overlap; join a moved label to its point.

    The figure is laid out first; labels are taken from the top, and each is
    lowered (its offset from the point grows) just below every label above it
    that it would cover, measured with the renderer. A label moved by more
    than a few points gets a thin line to its point.

    Parameters
    ----------
    ax : Axes
    labels : sequence of Annotation
        Labels placed with an offset in points (``textcoords="offset points"``).
    gap : float, default 1
        Space between labels, in points.

    Returns
    -------
    int
        How many labels were moved.
    """
    renderer = _layout_renderer(ax)
    px = renderer.points_to_pixels(1.0)
    boxes = []
    for label in labels:
        label.get_window_extent(renderer)  # places the text
        boxes.append((Text.get_window_extent(label, renderer), label))
    placed: list[Bbox] = []
    moved = 0
    for box, label in sorted(boxes, key=lambda item: -item[0].y1):
        shift = 0.0
        for _ in range(len(placed) + 1):
            current = box.translated(0.0, -shift)
            hits = [b for b in placed if b.overlaps(current)]
            if not hits:
                break
            shift = max(shift, *(box.y1 - (b.y0 - gap * px) for b in hits))
        placed.append(box.translated(0.0, -shift))
        if shift > 0:
            moved += 1
            dx, dy = label.xyann
            label.xyann = (dx, dy - shift / px)
            if shift > 4 * px and label.arrow_patch is not None:
                label.arrow_patch.set_visible(True)
    return moved
