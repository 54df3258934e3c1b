"""kam-analysis: Key Account Management analytics."""

__version__ = "0.1.0"

import warnings as _warnings

# Upstream deprecation noise that would otherwise reach every report (Ibis 12 on
# pandas 3 / DuckDB 2); narrowly matched so that our own warnings still show.
_warnings.filterwarnings("ignore", message=r"The 'future\.infer_string' option is deprecated")
_warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated")
