"""Synthetic data: the demo book with planted truths, and its messy ERP export.

:mod:`~kam_analysis.synthetic.demo`
    :func:`generate_dataset`: every table of the contract, plus the truths it planted.
:mod:`~kam_analysis.synthetic.messy`
    :func:`generate_messy_export`: the same book as an ERP's invoice-line export.
"""

from kam_analysis.synthetic.demo import (
    GROUND_TRUTH_FILES,
    INDUSTRIES,
    PRODUCT_LINES,
    REGIONS,
    RNG_BLOCK_ACCOUNTS,
    TABLE_SCHEMAS,
    TIERS,
    SyntheticSettings,
    generate_dataset,
    industry_product_preferences,
    seasonality_factors,
    zipf_top_shares,
)
from kam_analysis.synthetic.messy import (
    MESSY_EXPORT_COLUMNS,
    MESSY_EXPORT_DATE_FORMAT,
    MESSY_EXPORT_ENCODING,
    MESSY_EXPORT_FILE,
    MessyExportSettings,
    generate_messy_export,
    messy_export_config,
)

__all__ = [
    "GROUND_TRUTH_FILES",
    "INDUSTRIES",
    "MESSY_EXPORT_COLUMNS",
    "MESSY_EXPORT_DATE_FORMAT",
    "MESSY_EXPORT_ENCODING",
    "MESSY_EXPORT_FILE",
    "PRODUCT_LINES",
    "REGIONS",
    "RNG_BLOCK_ACCOUNTS",
    "TABLE_SCHEMAS",
    "TIERS",
    "MessyExportSettings",
    "SyntheticSettings",
    "generate_dataset",
    "generate_messy_export",
    "industry_product_preferences",
    "messy_export_config",
    "seasonality_factors",
    "zipf_top_shares",
]
