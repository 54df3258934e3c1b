"""Connections to the engine that holds the data, when it is not the dataset folder.

``[data.source]`` in ``kam.toml`` (:class:`kam_analysis.data.settings.SourceSettings`)
names an Ibis backend. :func:`connect_source` opens it:

* ``url`` → :func:`ibis.connect` (``postgres://user@host:5432/db``,
  ``duckdb:///warehouse.duckdb``, ...), ``${VAR}`` replaced from the environment
  so that passwords stay out of the file (and out of report manifests);
* ``backend = "pyspark"`` → a Spark session built from ``params`` (``master``
  plus any ``spark.*`` setting; an existing session is reused, as in a
  Databricks notebook) and :func:`ibis.pyspark.connect`;
* any other backend → ``ibis.<backend>.connect(**params)``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import ibis

if TYPE_CHECKING:
    from kam_analysis.data.settings import SourceSettings

__all__ = ["SourceError", "connect_source", "describe_source", "spark_session"]

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SPARK_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",  # no progress bars in logs or reports
    "spark.sql.session.timeZone": "UTC",  # timestamps as written, like DuckDB
}


class SourceError(RuntimeError):
    """The configured engine cannot be reached or is not installed."""


def expand_env(text: str) -> str:
    """Replace ``${VAR}`` with the environment variable ``VAR``.

    Raises
    ------
    SourceError
        Naming a variable that is not set.
    """

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise SourceError(f"environment variable {name} (used in data.source.url) is not set")
        return os.environ[name]

    return _ENV_VAR.sub(value, text)


def describe_source(source: SourceSettings) -> str:
    """Where the data is, for messages and manifests (no password).

    Parameters
    ----------
    source : SourceSettings

    Returns
    -------
    str
        e.g. ``"pyspark (database sales)"`` or ``"postgres://kam@db:5432/crm"``.
    """
    if source.url:
        # drop credentials: user:password@ → user@, and password=... query values
        text = re.sub(r"(://[^:/@]+):[^@]*@", r"\1@", source.url)
        return re.sub(r"(password=)[^&]*", r"\1***", text)
    where = f" (database {source.database})" if source.database else ""
    return f"{source.backend}{where}"


def spark_session(params: dict[str, Any] | None = None):
    """A Spark session for kam: the running one, or a new one from ``params``.

    Parameters
    ----------
    params : dict, optional
        ``master`` (default ``local[*]``), ``app_name`` and any Spark setting
        (``"spark.driver.memory" = "8g"``). Progress bars and the web UI are
        off and the session time zone is UTC unless set here.

    Returns
    -------
    pyspark.sql.SparkSession

    Raises
    ------
    SourceError
        When PySpark is not installed or Java is missing.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SourceError(
            "the pyspark backend needs PySpark: pip install 'kam-analysis[spark]' "
            "(and Java 17: apt-get install -y openjdk-17-jre-headless)"
        ) from None
    params = dict(params or {})
    builder = SparkSession.builder.master(str(params.pop("master", "local[*]"))).appName(
        str(params.pop("app_name", "kam-analysis"))
    )
    for key, value in {**_SPARK_DEFAULTS, **params}.items():
        builder = builder.config(key, str(value))
    try:
        spark = builder.getOrCreate()
    except Exception as err:  # py4j: Java gateway failed (no java on PATH, bad setting)
        raise SourceError(f"cannot start Spark: {' '.join(str(err).split())[:300]}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def connect_source(source: SourceSettings) -> ibis.BaseBackend:
    """Open the Ibis connection ``[data.source]`` describes.

    Parameters
    ----------
    source : SourceSettings
        Not ``backend = "files"`` (the dataset folder needs no connection).

    Returns
    -------
    ibis.BaseBackend

    Raises
    ------
    SourceError
        Unknown backend, driver not installed, connection refused; the message
        names the source without its password.
    """
    where = describe_source(source)
    try:
        if source.url:
            params = dict(source.params)
            if source.backend == "duckdb" and "read_only" not in source.url:
                # kam only reads: parallel notebooks may then open the same file
                params.setdefault("read_only", True)
            return ibis.connect(expand_env(source.url), **params)
        if source.backend == "pyspark":
            return ibis.pyspark.connect(spark_session(source.params))
        try:
            backend = getattr(ibis, source.backend)
        except AttributeError:
            raise SourceError(
                f"unknown Ibis backend {source.backend!r} in data.source.backend "
                "(pyspark, postgres, duckdb, snowflake, bigquery, ...)"
            ) from None
        return backend.connect(**source.params)
    except SourceError:
        raise
    except ImportError as err:
        raise SourceError(
            f"the {source.backend} backend is not installed ({err.name or err}): "
            f"pip install 'ibis-framework[{source.backend}]'"
        ) from None
    except Exception as err:
        text = " ".join(str(err).split())
        raise SourceError(
            f"cannot connect to {where}: {type(err).__name__}: {text[:300]}"
        ) from None
