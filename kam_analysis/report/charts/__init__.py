"""Charts for the reports, by analysis. Convention: data first, ``ax=None`` (a new
figure when omitted), return the ``Axes``, never call ``plt.show()``."""

from kam_analysis.report.charts.base import (
    FittedText,
    bar_contributions,
    fan_chart,
    heatmap,
    pareto_curve,
    place_legend,
    scatter_labeled,
    separate_labels,
    wrap_xtick_labels,
)
from kam_analysis.report.charts.kpi import hist_by_group, small_multiples
from kam_analysis.report.charts.ltv import (
    calibration_plot,
    forest_plot,
    interval_ranking,
    period_histogram_plot,
    pit_histogram,
    renewal_bars,
    retention_plot,
    tracking_plot,
)
from kam_analysis.report.charts.plan import (
    CARD_STRIPE_COLOURS,
    OBJECTIVE_COLOURS,
    kpi_cards,
    month_axis,
    objective_roadmap,
    product_line_bars,
    revenue_history,
)
from kam_analysis.report.charts.scenarios import (
    break_even_plot,
    concentration_trend_plot,
    scenario_fans,
    scheme_boxplot,
    tornado_chart,
)
from kam_analysis.report.charts.stakeholders import (
    STANCE_COLOURS,
    org_chart,
    stakeholder_map,
    stakeholder_panels,
)
from kam_analysis.report.charts.valuation import (
    family_colors,
    pareto_curves,
    quadrant_scatter,
    rank_intervals,
    wallet_bars,
)

__all__ = [
    "CARD_STRIPE_COLOURS",
    "OBJECTIVE_COLOURS",
    "FittedText",
    "STANCE_COLOURS",
    "bar_contributions",
    "break_even_plot",
    "calibration_plot",
    "pit_histogram",
    "concentration_trend_plot",
    "family_colors",
    "fan_chart",
    "forest_plot",
    "heatmap",
    "hist_by_group",
    "interval_ranking",
    "kpi_cards",
    "month_axis",
    "org_chart",
    "pareto_curve",
    "pareto_curves",
    "period_histogram_plot",
    "place_legend",
    "objective_roadmap",
    "product_line_bars",
    "quadrant_scatter",
    "rank_intervals",
    "renewal_bars",
    "retention_plot",
    "revenue_history",
    "scatter_labeled",
    "scenario_fans",
    "scheme_boxplot",
    "separate_labels",
    "small_multiples",
    "stakeholder_map",
    "stakeholder_panels",
    "tornado_chart",
    "tracking_plot",
    "wallet_bars",
    "wrap_xtick_labels",
]
