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
from typing import Any
from urllib.parse import quote

import ibis

from kam_analysis.core.errors import KamError
from kam_analysis.data.settings import SourceSettings

__all__ = [
    "SourceError",
    "connect_source",
    "describe_source",
    "expand_env",
    "expand_url",
    "redact",
    "secret_values",
    "spark_session",
]

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SPARK_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",  # no progress bars in logs or reports
    "spark.sql.session.timeZone": "UTC",  # timestamps as written, like DuckDB
}


class SourceError(KamError, RuntimeError):
    """The configured engine cannot be reached or is not installed."""


def _env_value(name: str) -> str:
    if name not in os.environ:
        raise SourceError(f"environment variable {name} (used in data.source.url) is not set")
    return os.environ[name]


def expand_env(text: str) -> str:
    """Replace ``${VAR}`` with the environment variable ``VAR`` (as it is).

    Raises
    ------
    SourceError
        Naming a variable that is not set.
    """
    return _ENV_VAR.sub(lambda m: _env_value(m.group(1)), text)


def expand_url(url: str) -> str:
    """A connection URL with ``${VAR}`` replaced by the variable, percent-encoded.

    A password such as ``p/@ss#:?`` would otherwise end the user part at its
    ``@``, start the path at its ``/`` or a fragment at its ``#``: every value
    is encoded so that it stays inside the part of the URL it was written in
    (``postgres://kam:${PW}@db/crm`` → ``postgres://kam:p%2F%40ss%23%3A%3F@db/crm``),
    and drivers decode it. A variable that is the whole URL is used as it is.

    Raises
    ------
    SourceError
        Naming a variable that is not set.
    """
    whole = _ENV_VAR.fullmatch(url.strip())
    if whole:
        return _env_value(whole.group(1))
    return _ENV_VAR.sub(lambda m: quote(_env_value(m.group(1)), safe=""), url)


def secret_values(url: str | None) -> list[str]:
    """The values a URL's ``${VAR}`` stand for (raw and encoded), to redact from messages."""
    if not url:
        return []
    values: list[str] = []
    for name in _ENV_VAR.findall(url):
        value = os.environ.get(name)
        if value and len(value) >= 3:
            values.extend({value, quote(value, safe="")})
    return values


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value and any URL password replaced by ``***``."""
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, "***")
    text = re.sub(r"(://[^:/@\s]+):[^@\s]*@", r"\1:***@", text)
    return re.sub(r"(password=)[^&\s]*", r"\1***", text, flags=re.I)


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
            return ibis.connect(expand_url(source.url), **params)
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
        text = redact(" ".join(str(err).split()), secret_values(source.url))
        raise SourceError(
            f"cannot connect to {where}: {type(err).__name__}: {text[:300]}"
        ) from None
