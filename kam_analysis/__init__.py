"""kam-analysis: Key Account Management analytics."""

__version__ = "0.1.0"
