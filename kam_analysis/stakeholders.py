"""Decision-maker mapping, relationship risk and account governance.

The seed guide asks to map every stakeholder of a purchase (field, procurement,
IT, executives: 顧客の意思決定者マッピング), to use executive sponsors
(エグゼクティブスポンサーの活用) and to run accounts with defined roles, regular
reviews and escalation (アカウントガバナンスの設計). This module turns the
``stakeholders`` and ``activities`` tables into:

* :func:`coverage`: which decision roles we reach per account;
* :func:`relationship_risks`: single-threaded relationships, missing sponsor,
  influential blockers, stale contacts, champion concentration;
* :func:`buying_centre_whitespace`: whether we know a buyer for each whitespace;
* :func:`governance_cadence`: QBRs and executive meetings against plan;
* :func:`contact_list` and :func:`tree_layout`: the tables behind the stakeholder
  map and the org chart, which :mod:`kam_analysis.report.charts.stakeholders`
  draws (this module does not draw).

Texts (role and stance names, risk reasons) come from the ``stakeholders.*``
keys of the locale files through :func:`kam_analysis.core.i18n.t`; the rules
and their defaults from :class:`StakeholderSettings`.

Personal data
-------------
Names, e-mails and job titles are personal data. The charts and
:func:`contact_list` show a role and a stable pseudonym (:func:`pseudonym`, e.g. ``C-3F2A``) unless
``show_personal_data=True``; the tables never carry names or e-mails. The
pseudonym is a keyed hash of the contact id with a secret key of this
installation (:func:`installation_key`, a file outside every dataset and
report), so pseudonyms cannot be reversed by hashing known contact ids.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kam_analysis.core.errors import InputError
from kam_analysis.core.i18n import check_language, t
from kam_analysis.core.schemas import ACTIVITY_KINDS, ROLES, STANCE_SCORE, STANCES

PERSONAL_COLUMNS: tuple[str, ...] = ("name", "email", "title")
"""Stakeholder columns that are personal data and never leave this module by default."""

STAKEHOLDER_COLUMNS: tuple[str, ...] = ("contact_id", "account_id", "role", "influence", "stance")
ACTIVITY_COLUMNS: tuple[str, ...] = ("account_id", "date", "kind")


class StakeholderInputError(InputError, ValueError):
    """Stakeholder or activity input lacks a column or breaks a rule."""


class StakeholderSettings(BaseModel):
    """Relationship and governance rules (composed into ``kam.toml`` as ``[stakeholders]``).

    Attributes
    ----------
    stale_days : int
        A contact not touched for longer is stale.
    stale_min_influence : int
        Only contacts with at least this influence raise the stale flag.
    single_thread_share : float
        One contact holding at least this share of the account's contact-tagged
        activities makes the relationship single-threaded.
    activity_window_days : int
        Window of activities for the concentration test.
    sponsor_min_stance : str
        Least favourable stance an executive sponsor may have.
    blocker_min_influence : int
        Influence from which a blocker is flagged.
    governance_plan : dict
        Touchpoints per year by activity kind (or per tier: tier -> kind -> count).
    at_risk_share : float
        Share of the plan below which governance is off track (at risk between).
    pseudonym_salt : str
        Secret key of :func:`pseudonym`; empty (the default and the advice):
        the installation's key file. A salt written here is left out of run
        manifests.
    """

    model_config = ConfigDict(extra="forbid")

    stale_days: int = Field(90, ge=1)
    stale_min_influence: int = Field(3, ge=1, le=5)
    single_thread_share: float = Field(0.6, gt=0, le=1)
    activity_window_days: int = Field(365, ge=1)
    sponsor_min_stance: str = "supporter"
    blocker_min_influence: int = Field(4, ge=1, le=5)
    governance_plan: dict[str, int] | dict[str, dict[str, int]] = Field(
        default_factory=lambda: {"qbr": 4, "executive_meeting": 2}
    )
    at_risk_share: float = Field(0.5, ge=0, le=1)
    pseudonym_salt: str = ""

    @field_validator("sponsor_min_stance")
    @classmethod
    def _known_stance(cls, value: str) -> str:
        if value not in STANCES:
            raise ValueError(f"unknown stance {value!r}; known: {list(STANCES)}")
        return value


def _rules(base: StakeholderSettings | None = None, **overrides: Any) -> StakeholderSettings:
    """``base`` (default: the defaults) with the given values; ``None`` keeps ``base``'s."""
    values = base.model_dump() if base is not None else {}
    return StakeholderSettings(**(values | {k: v for k, v in overrides.items() if v is not None}))


# --------------------------------------------------------------------------- helpers


KEY_ENV = "KAM_PSEUDONYM_KEY_FILE"
"""Environment variable naming the pseudonym key file (default: the user's config folder)."""

PSEUDONYM_LENGTH = 10
"""Hex digits of a pseudonym: 40 bits, so that 100,000 contacts collide with a chance
of about 0.5 % (a birthday bound of n² / 2·16¹⁰)."""


def key_file() -> Path:
    """Where this installation's pseudonym key lives (never inside a dataset or a report).

    ``$KAM_PSEUDONYM_KEY_FILE``, else ``$XDG_CONFIG_HOME/kam-analysis/pseudonym.key``
    (``~/.config/...``).
    """
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kam-analysis" / "pseudonym.key"


def _create_key(file: Path) -> None:
    """Write a new random key with mode 0600; the first of concurrent processes wins."""
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = file.with_name(f"{file.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    try:
        os.link(tmp, file)  # atomic; fails when another process made the key first
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


@functools.cache
def _installation_key(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        _create_key(file)
    key = file.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"pseudonym key file {file} is shorter than 32 characters")
    return key


def installation_key() -> str:
    """This installation's secret pseudonym key, created on first use (mode 0600).

    It is read from :func:`key_file` and never written to a report, a log or a
    manifest, so pseudonyms cannot be reversed by hashing known contact ids
    without access to this machine's key. Copy the file to another machine to
    get the same pseudonyms there.
    """
    return _installation_key(str(key_file()))


def pseudonym(
    contact_id, salt: str = "", *, length: int = PSEUDONYM_LENGTH, prefix: str = "C-"
) -> str:
    """Stable pseudonym of a contact, e.g. ``C-3F2A9B01C4``.

    The first ``length`` hex digits of HMAC-SHA256(key, contact_id), upper
    case, with ``key`` the given ``salt`` or, when it is empty, this
    installation's secret key (:func:`installation_key`). The same id and key
    always give the same pseudonym.

    Parameters
    ----------
    contact_id : str
    salt : str, default ""
        Secret key; empty: the installation's key. (An unkeyed pseudonym of a
        guessable id could be reversed by trying ids.)
    length : int, default :data:`PSEUDONYM_LENGTH`
        Hex digits.
    prefix : str, default "C-"

    Returns
    -------
    str
    """
    if contact_id is None or (isinstance(contact_id, float) and np.isnan(contact_id)):
        raise ValueError("pseudonym: contact_id is missing")
    if not 1 <= length <= 64:
        raise ValueError(f"pseudonym: length must be 1-64, got {length}")
    key = str(salt) if salt else installation_key()
    digest = hmac.new(key.encode(), str(contact_id).encode(), hashlib.sha256).hexdigest()
    return prefix + digest[:length].upper()


def _check(df: pd.DataFrame, table: str, columns: tuple[str, ...]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise StakeholderInputError(f"{table}: expected a pandas DataFrame, got {type(df)}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise StakeholderInputError(
            f"{table}: missing column(s) {missing}; required {list(columns)}; "
            f"found {list(df.columns)[:12]}"
        )


def _check_stakeholders(st: pd.DataFrame) -> None:
    _check(st, "stakeholders", STAKEHOLDER_COLUMNS)
    bad_role = ~st["role"].isin(ROLES)
    if bad_role.any():
        raise StakeholderInputError(
            f"stakeholders.role must be one of {list(ROLES)}; got e.g. "
            f"{sorted(st.loc[bad_role, 'role'].astype(str).unique())[:3]}"
        )
    bad_stance = ~st["stance"].isin(STANCES)
    if bad_stance.any():
        raise StakeholderInputError(
            f"stakeholders.stance must be one of {list(STANCES)}; got e.g. "
            f"{sorted(st.loc[bad_stance, 'stance'].astype(str).unique())[:3]}"
        )
    inf = pd.to_numeric(st["influence"], errors="coerce")
    if (inf.isna() | (inf < 1) | (inf > 5)).any():
        raise StakeholderInputError("stakeholders.influence must be an integer 1-5")


def last_touch(
    stakeholders: pd.DataFrame, activities: pd.DataFrame | None, as_of: pd.Timestamp
) -> pd.Series:
    """Last touch per contact: ``last_contact_date`` or its latest activity, not after ``as_of``.

    Parameters
    ----------
    stakeholders : pandas.DataFrame
        ``contact_id`` (+ optional ``last_contact_date``).
    activities : pandas.DataFrame, optional
        Activities with ``contact_id`` and ``date`` count as touches.
    as_of : pandas.Timestamp
        Touches after it are ignored.

    Returns
    -------
    pandas.Series
        Latest touch per contact (index ``contact_id`` as text, in the order of
        ``stakeholders``); NaT when never touched.
    """
    st = stakeholders
    last = (
        pd.to_datetime(st["last_contact_date"])
        if "last_contact_date" in st.columns
        else pd.Series(pd.NaT, index=st.index, dtype="datetime64[us]")
    )
    last = pd.Series(last.to_numpy(), index=st["contact_id"].astype(str).to_numpy())
    last = last.where(last <= as_of)
    if activities is not None and "contact_id" in activities.columns:
        act = activities[activities["contact_id"].notna()]
        d = pd.to_datetime(act["date"])
        act_last = d[d <= as_of].groupby(act.loc[d <= as_of, "contact_id"].astype(str)).max()
        last = pd.concat([last, act_last.reindex(last.index)], axis=1).max(axis=1)
    return last


def account_contacts(stakeholders: pd.DataFrame, account_id: object) -> pd.DataFrame:
    """The stakeholders of one account, checked, with ``contact_id`` as text.

    Parameters
    ----------
    stakeholders : pandas.DataFrame
        The stakeholders table (checked against the data contract).
    account_id : object
        Compared as text with ``stakeholders.account_id``.

    Returns
    -------
    pandas.DataFrame
        The account's rows with a fresh ``RangeIndex`` (empty when none).

    Raises
    ------
    StakeholderInputError
        For a missing column or an unknown role or stance.
    """
    _check_stakeholders(stakeholders)
    people = stakeholders[stakeholders["account_id"].astype(str) == str(account_id)]
    return people.assign(contact_id=people["contact_id"].astype(str)).reset_index(drop=True)


def _stance_score(stance: pd.Series) -> pd.Series:
    return stance.map(STANCE_SCORE).astype(float)


_STANCE_OF_SCORE = {float(v): k for k, v in STANCE_SCORE.items()}


def _best_stance(scores: pd.Series) -> str | float:
    """The most favourable stance of some contacts' scores (NaN when none is known)."""
    best = scores.max()
    return np.nan if pd.isna(best) else _STANCE_OF_SCORE[float(best)]


def _best_stances(scores: pd.core.groupby.SeriesGroupBy) -> pd.Series:
    """:func:`_best_stance` of each group."""
    return scores.max().map(_STANCE_OF_SCORE)


# --------------------------------------------------------------------------- tables


def coverage(
    stakeholders: pd.DataFrame,
    accounts: pd.DataFrame | None = None,
    as_of=None,
    *,
    activities: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Which decision roles we have a relationship with, per account.

    A relationship with a role means at least one known contact in that role
    (a row of ``stakeholders``).

    Parameters
    ----------
    stakeholders : pandas.DataFrame
        ``contact_id, account_id, role, influence, stance`` (+ optional
        ``last_contact_date``).
    accounts : pandas.DataFrame, optional
        ``account_id``; accounts without any stakeholder appear with zero coverage.
    as_of : date-like, optional
        Reference date for the recency columns (default: today, normalised).
    activities : pandas.DataFrame, optional
        Activities with ``contact_id`` also count as contact.

    Returns
    -------
    pandas.DataFrame
        One row per account: ``account_id, n_contacts, roles_covered (count),
        role_coverage (share of schemas.ROLES), roles_missing (comma list),
        days_since_last_contact`` and for each role ``<role>_contacts,
        <role>_max_influence, <role>_best_stance, <role>_days_since_contact``.
    """
    _check_stakeholders(stakeholders)
    as_of = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.today().normalize()
    st = stakeholders.assign(
        account_id=stakeholders["account_id"].astype(str),
        _score=_stance_score(stakeholders["stance"]),
        _last=last_touch(stakeholders, activities, as_of).to_numpy(),
    )
    st["_days"] = (as_of - st["_last"]).dt.days.astype(float)
    ids = pd.Index(sorted(st["account_id"].unique()))
    if accounts is not None:
        ids = pd.Index(accounts["account_id"].astype(str)).append(
            pd.Index(sorted(set(st["account_id"]) - set(accounts["account_id"].astype(str))))
        )
    out = pd.DataFrame(index=ids)
    out.index.name = "account_id"
    g = st.groupby("account_id")
    out["n_contacts"] = g.size().reindex(ids).fillna(0).astype(int)
    out["days_since_last_contact"] = g["_days"].min().reindex(ids)
    covered = []
    for role in ROLES:
        r = st[st["role"] == role].groupby("account_id")
        out[f"{role}_contacts"] = r.size().reindex(ids).fillna(0).astype(int)
        out[f"{role}_max_influence"] = r["influence"].max().reindex(ids).astype(float)
        out[f"{role}_best_stance"] = _best_stances(r["_score"]).reindex(ids)
        out[f"{role}_days_since_contact"] = r["_days"].min().reindex(ids)
        covered.append(out[f"{role}_contacts"] > 0)
    cov = pd.concat(covered, axis=1)
    cov.columns = list(ROLES)
    out.insert(1, "roles_covered", cov.sum(axis=1).astype(int))
    out.insert(2, "role_coverage", cov.sum(axis=1) / len(ROLES))
    gaps = zip(*(np.where(cov[r].to_numpy(), "", r) for r in ROLES), strict=True)
    missing = pd.Series([", ".join(r for r in row if r) for row in gaps], index=out.index)
    out.insert(3, "roles_missing", missing)
    return out.reset_index()


def relationship_risks(
    stakeholders: pd.DataFrame,
    activities: pd.DataFrame | None = None,
    as_of=None,
    *,
    accounts: pd.DataFrame | None = None,
    stale_days: int | None = None,
    stale_min_influence: int | None = None,
    single_thread_share: float | None = None,
    activity_window_days: int | None = None,
    sponsor_min_stance: str | None = None,
    blocker_min_influence: int | None = None,
    settings: StakeholderSettings | None = None,
    lang: Literal["en", "ja"] = "en",
) -> pd.DataFrame:
    """Flag relationship risks per account.

    The rules are those of ``settings`` (``[stakeholders]`` in kam.toml, default
    :class:`StakeholderSettings`); a rule argument given here overrides it.

    Flags
    -----
    single_threaded
        At most one known contact, or one contact holds at least
        ``single_thread_share`` of the account's activities with a ``contact_id`` in
        the last ``activity_window_days``.
    no_executive_sponsor
        No ``executive`` stakeholder with stance ``sponsor_min_stance`` or better.
    high_influence_blocker
        A stakeholder with influence >= ``blocker_min_influence`` and stance blocker.
    stale_contacts
        A contact with influence >= ``stale_min_influence`` whose last touch
        (``last_contact_date`` or a tagged activity) is more than ``stale_days`` ago,
        or was never recorded.
    champion_concentration
        No champion, only one champion, or all champions in one role.

    Parameters
    ----------
    stakeholders : pandas.DataFrame
        ``contact_id, account_id, role, influence, stance`` (+ ``last_contact_date``).
    activities : pandas.DataFrame, optional
        ``account_id, date, kind`` (+ ``contact_id`` for the concentration test).
    as_of : date-like, optional
        Default: today.
    accounts : pandas.DataFrame, optional
        Accounts without stakeholders are included (all relationship flags raised).
    stale_days, stale_min_influence, single_thread_share, activity_window_days : optional
        As in :class:`StakeholderSettings` (the default when ``None``).
    sponsor_min_stance, blocker_min_influence : optional
        As in :class:`StakeholderSettings` (``settings``' value when ``None``).
    settings : StakeholderSettings, optional
        The rules (``ctx.config.stakeholders`` in reports).
    lang : {"en", "ja"}
        Language of ``reasons`` (the ``stakeholders.risk.*`` locale keys).

    Returns
    -------
    pandas.DataFrame
        One row per account: ``account_id, n_contacts, top_contact_share,
        n_stale_contacts, single_threaded, no_executive_sponsor,
        high_influence_blocker, stale_contacts, champion_concentration, n_flags,
        reasons`` (``"; "``-joined explanations, empty when no flag).
    """
    check_language(lang)
    _check_stakeholders(stakeholders)
    if activities is not None:
        _check(activities, "activities", ACTIVITY_COLUMNS)
    rules = _rules(
        settings,
        stale_days=stale_days,
        stale_min_influence=stale_min_influence,
        single_thread_share=single_thread_share,
        activity_window_days=activity_window_days,
        sponsor_min_stance=sponsor_min_stance,
        blocker_min_influence=blocker_min_influence,
    )
    as_of = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.today().normalize()
    st = stakeholders.assign(
        account_id=stakeholders["account_id"].astype(str),
        contact_id=stakeholders["contact_id"].astype(str),
        _score=_stance_score(stakeholders["stance"]),
        _last=last_touch(stakeholders, activities, as_of).to_numpy(),
    )
    ids = list(dict.fromkeys(st["account_id"]))
    if accounts is not None:
        acc = accounts["account_id"].astype(str).tolist()
        ids = acc + [i for i in ids if i not in set(acc)]

    share = pd.Series(np.nan, index=ids, dtype=float)
    if activities is not None and "contact_id" in activities.columns:
        d = pd.to_datetime(activities["date"])
        win = activities[
            (d <= as_of) & (d > as_of - pd.Timedelta(days=rules.activity_window_days))
        ].dropna(subset=["contact_id"])
        if len(win):
            cnt = win.groupby([win["account_id"].astype(str), win["contact_id"].astype(str)]).size()
            share = (cnt.groupby(level=0).max() / cnt.groupby(level=0).sum()).reindex(ids)
    sponsor_min = STANCE_SCORE[rules.sponsor_min_stance]
    by_account = dict(iter(st.groupby("account_id", sort=False)))
    nobody = st.iloc[:0]
    rows = []
    for acc_id in ids:
        s = by_account.get(acc_id, nobody)
        n = len(s)
        top = share.get(acc_id, np.nan)
        reasons = []
        single = n <= 1 or (not np.isnan(top) and top >= rules.single_thread_share)
        if single:
            detail = (
                t("stakeholders.risk.detail_contacts", lang, n=n)
                if n <= 1
                else t("stakeholders.risk.detail_share", lang, share=top)
            )
            reasons.append(t("stakeholders.risk.single_threaded", lang, detail=detail))
        no_sponsor = not ((s["role"] == "executive") & (s["_score"] >= sponsor_min)).any()
        if no_sponsor:
            reasons.append(t("stakeholders.risk.no_executive_sponsor", lang))
        blockers = int(
            ((s["influence"] >= rules.blocker_min_influence) & (s["stance"] == "blocker")).sum()
        )
        if blockers:
            reasons.append(t("stakeholders.risk.high_influence_blocker", lang, n=blockers))
        key = s[s["influence"] >= rules.stale_min_influence]
        stale_n = int(((as_of - key["_last"]).dt.days.fillna(np.inf) > rules.stale_days).sum())
        if stale_n:
            reasons.append(
                t("stakeholders.risk.stale_contacts", lang, n=stale_n, days=rules.stale_days)
            )
        champs = s[s["stance"] == "champion"]
        if len(champs) == 0:
            conc, detail = True, t("stakeholders.risk.detail_none", lang)
        elif len(champs) == 1:
            conc, detail = True, t("stakeholders.risk.detail_one", lang)
        elif champs["role"].nunique() == 1:
            role = champs["role"].iloc[0]
            # English names the role by its id (as in the data); Japanese by its label
            shown = role if lang == "en" else t(f"stakeholders.{role}", lang)
            conc, detail = True, t("stakeholders.risk.detail_role", lang, role=shown)
        else:
            conc, detail = False, ""
        if conc:
            reasons.append(t("stakeholders.risk.champion_concentration", lang, detail=detail))
        rows.append(
            {
                "account_id": acc_id,
                "n_contacts": n,
                "top_contact_share": top,
                "n_stale_contacts": stale_n,
                "single_threaded": bool(single),
                "no_executive_sponsor": bool(no_sponsor),
                "high_influence_blocker": blockers > 0,
                "stale_contacts": stale_n > 0,
                "champion_concentration": conc,
                "reasons": "; ".join(reasons),
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    flags = [
        "single_threaded",
        "no_executive_sponsor",
        "high_influence_blocker",
        "stale_contacts",
        "champion_concentration",
    ]
    out.insert(out.columns.get_loc("reasons"), "n_flags", out[flags].sum(axis=1).astype(int))
    return out


def buying_centre_whitespace(
    stakeholders: pd.DataFrame,
    whitespace: pd.DataFrame,
    *,
    general_roles: tuple[str, ...] = ("business", "it"),
    supporter_min_stance: str = "supporter",
) -> pd.DataFrame:
    """For each whitespace (account x product line), do we know someone who would buy it?

    A stakeholder counts as a potential buyer of a product line when their
    ``product_line`` is that line, or when their ``product_line`` is empty and
    their role is one of ``general_roles`` (business and IT people buy across
    lines; executives, procurement, finance and legal approve rather than ask).
    Without a ``product_line`` column every contact in ``general_roles`` counts.

    Parameters
    ----------
    stakeholders : pandas.DataFrame
        ``contact_id, account_id, role, influence, stance`` (+ ``product_line``).
    whitespace : pandas.DataFrame
        Long: ``account_id, product_line, whitespace_value``; rows with a value
        <= 0 are no whitespace and left out.
    general_roles : tuple of str
    supporter_min_stance : str

    Returns
    -------
    pandas.DataFrame
        ``account_id, product_line, whitespace_value, n_buyers, buyer_roles,
        max_influence, best_stance, has_buyer, has_supporter`` sorted by
        ``whitespace_value`` descending.
    """
    _check_stakeholders(stakeholders)
    _check(whitespace, "whitespace", ("account_id", "product_line", "whitespace_value"))
    bad = [r for r in general_roles if r not in ROLES]
    if bad:
        raise ValueError(f"general_roles {bad} not in {list(ROLES)}")
    ws = whitespace[pd.to_numeric(whitespace["whitespace_value"]) > 0].assign(
        account_id=lambda d: d["account_id"].astype(str),
        product_line=lambda d: d["product_line"].astype(str),
    )
    st = stakeholders.assign(
        account_id=stakeholders["account_id"].astype(str),
        _score=_stance_score(stakeholders["stance"]),
    )
    pl = (
        st["product_line"]
        if "product_line" in st.columns
        else pd.Series(pd.NA, index=st.index, dtype="object")
    )
    general = st[pl.isna() & st["role"].isin(general_roles)]
    specific = st[pl.notna()].assign(product_line=pl[pl.notna()].astype(str))
    min_score = STANCE_SCORE[supporter_min_stance]
    rows = []
    for r in ws.itertuples(index=False):
        people = pd.concat(
            [
                specific[
                    (specific["account_id"] == r.account_id)
                    & (specific["product_line"] == r.product_line)
                ],
                general[general["account_id"] == r.account_id],
            ]
        )
        rows.append(
            {
                "account_id": r.account_id,
                "product_line": r.product_line,
                "whitespace_value": float(r.whitespace_value),
                "n_buyers": len(people),
                "buyer_roles": ", ".join(r_ for r_ in ROLES if r_ in set(people["role"])),
                "max_influence": float(people["influence"].max()) if len(people) else np.nan,
                "best_stance": _best_stance(people["_score"]) if len(people) else np.nan,
                "has_buyer": len(people) > 0,
                "has_supporter": bool((people["_score"] >= min_score).any()),
            }
        )
    cols = [
        "account_id",
        "product_line",
        "whitespace_value",
        "n_buyers",
        "buyer_roles",
        "max_influence",
        "best_stance",
        "has_buyer",
        "has_supporter",
    ]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values("whitespace_value", ascending=False, kind="stable").reset_index(
        drop=True
    )


def governance_cadence(
    activities: pd.DataFrame,
    as_of,
    plan: Mapping[str, int] | Mapping[str, Mapping[str, int]] | None = None,
    tier: pd.Series | None = None,
    *,
    accounts: pd.DataFrame | None = None,
    at_risk_share: float | None = None,
) -> pd.DataFrame:
    """Review cadence over the trailing 12 months against plan, per account.

    Parameters
    ----------
    activities : pandas.DataFrame
        ``account_id, date, kind``.
    as_of : date-like
        The window is (as_of - 12 months, as_of].
    plan : dict, optional
        Touchpoints per year by activity kind, or per tier: ``{tier: {kind: n}}``;
        default ``StakeholderSettings().governance_plan`` (QBR 4, executive meeting 2).
    tier : pandas.Series, optional
        Tier per account (index ``account_id``); needed for a per-tier plan.
        Accounts in a tier without a plan get status ``no_plan``.
    accounts : pandas.DataFrame, optional
        Account universe (accounts without activities count 0).
    at_risk_share : float, optional
        ``on_track`` when every kind reaches its plan, ``at_risk`` when every kind
        reaches at least this share of it, ``off_track`` otherwise; default
        ``StakeholderSettings().at_risk_share`` (0.5).

    Returns
    -------
    pandas.DataFrame
        ``account_id, tier, <kind>_count, <kind>_plan`` for every planned kind,
        ``attainment`` (lowest count / plan, capped at 1) and ``status``.
    """
    _check(activities, "activities", ACTIVITY_COLUMNS)
    rules = _rules(at_risk_share=at_risk_share)
    plan = dict(plan) if plan is not None else dict(rules.governance_plan)
    per_tier = bool(plan) and all(isinstance(v, Mapping) for v in plan.values())
    plans: dict = {k: dict(v) for k, v in plan.items()} if per_tier else {None: plan}
    kinds = sorted({k for p in plans.values() for k in p})
    unknown = [k for k in kinds if k not in ACTIVITY_KINDS]
    if unknown:
        raise ValueError(f"plan: unknown activity kind(s) {unknown}; known: {list(ACTIVITY_KINDS)}")
    if per_tier and tier is None:
        raise ValueError("plan is given per tier: pass tier (account_id -> tier)")
    as_of = pd.Timestamp(as_of)
    start = as_of - pd.DateOffset(months=12)
    d = pd.to_datetime(activities["date"])
    win = activities[(d > start) & (d <= as_of)]
    ids = list(dict.fromkeys(activities["account_id"].astype(str)))
    if accounts is not None:
        acc = accounts["account_id"].astype(str).tolist()
        ids = acc + [i for i in ids if i not in set(acc)]
    if tier is not None:
        tier_of = pd.Series(tier)
        tier_of.index = tier_of.index.astype(str)
        ids = ids + [i for i in tier_of.index if i not in set(ids)]
    counts = (
        win.assign(account_id=win["account_id"].astype(str))
        .groupby(["account_id", "kind"])
        .size()
        .unstack(fill_value=0)
        .reindex(index=ids, columns=kinds, fill_value=0)
    )
    out = pd.DataFrame({"account_id": ids})
    out["tier"] = tier_of.reindex(ids).to_numpy() if tier is not None else None
    attain = np.full(len(ids), np.inf)
    has_plan = np.zeros(len(ids), dtype=bool)
    for k in kinds:
        pk = np.array(
            [
                plans.get(tt if per_tier else None, {}).get(k, np.nan)
                for tt in (out["tier"] if per_tier else [None] * len(ids))
            ],
            dtype=float,
        )
        cnt = counts[k].to_numpy(dtype=float)
        out[f"{k}_count"] = cnt.astype(int)
        out[f"{k}_plan"] = pk
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(pk > 0, np.minimum(cnt / np.where(pk > 0, pk, 1), 1.0), np.nan)
        planned = ~np.isnan(pk)
        has_plan |= planned & (pk > 0)
        attain = np.where(planned & (pk > 0), np.minimum(attain, ratio), attain)
    attain = np.where(has_plan, attain, np.nan)
    out["attainment"] = attain
    status = np.where(
        attain >= 1.0, "on_track", np.where(attain >= rules.at_risk_share, "at_risk", "off_track")
    )
    out["status"] = np.where(has_plan, status, "no_plan")
    return out


RISK_FLAGS: tuple[str, ...] = (
    "single_threaded",
    "no_executive_sponsor",
    "high_influence_blocker",
    "stale_contacts",
    "champion_concentration",
)
"""Flag columns of :func:`relationship_risks`, in display order."""


def risk_summary(risks: pd.DataFrame) -> pd.DataFrame:
    """How many accounts carry each relationship risk.

    Parameters
    ----------
    risks : pandas.DataFrame
        :func:`relationship_risks` output (one row per account, boolean flag columns).

    Returns
    -------
    pandas.DataFrame
        One row per flag of :data:`RISK_FLAGS`: ``flag, accounts`` (count),
        ``share`` (of the accounts in ``risks``; NaN when there are none).
    """
    missing = [f for f in RISK_FLAGS if f not in risks.columns]
    if missing:
        raise StakeholderInputError(
            f"risk_summary: missing flag column(s) {missing}; pass relationship_risks()"
        )
    counts = [int(risks[f].astype(bool).sum()) for f in RISK_FLAGS]
    n = len(risks)
    return pd.DataFrame(
        {
            "flag": list(RISK_FLAGS),
            "accounts": counts,
            "share": [c / n if n else np.nan for c in counts],
        }
    )


def role_stance_matrix(coverage_table: pd.DataFrame) -> pd.DataFrame:
    """Best stance we have in each decision role, as numbers, per account.

    Parameters
    ----------
    coverage_table : pandas.DataFrame
        :func:`coverage` output (``account_id`` and ``<role>_best_stance``).

    Returns
    -------
    pandas.DataFrame
        Index ``account_id`` (order kept), one column per role of
        :data:`schemas.ROLES`: the :data:`schemas.STANCE_SCORE` of the best stance
        (champion 2 ... blocker -2), NaN where nobody in that role is known.
    """
    cols = [f"{r}_best_stance" for r in ROLES]
    missing = [c for c in ["account_id", *cols] if c not in coverage_table.columns]
    if missing:
        raise StakeholderInputError(
            f"role_stance_matrix: missing column(s) {missing}; pass coverage()"
        )
    out = pd.DataFrame(
        {r: coverage_table[f"{r}_best_stance"].map(STANCE_SCORE).astype(float) for r in ROLES}
    )
    out.index = pd.Index(coverage_table["account_id"].astype(str), name="account_id")
    return out


def whitespace_buyer_summary(buying_centre: pd.DataFrame) -> pd.DataFrame:
    """Per account: how much whitespace lies in product lines where we know no buyer.

    Parameters
    ----------
    buying_centre : pandas.DataFrame
        :func:`buying_centre_whitespace` output (``account_id, product_line,
        whitespace_value, has_buyer``).

    Returns
    -------
    pandas.DataFrame
        One row per account with whitespace: ``account_id, whitespace_total,
        whitespace_no_buyer, share_no_buyer, n_lines, n_lines_no_buyer,
        lines_no_buyer`` (comma list, largest whitespace first), sorted by
        ``whitespace_no_buyer`` descending (ties by ``account_id``).
    """
    _check(
        buying_centre,
        "buying_centre",
        ("account_id", "product_line", "whitespace_value", "has_buyer"),
    )
    cols = [
        "account_id",
        "whitespace_total",
        "whitespace_no_buyer",
        "share_no_buyer",
        "n_lines",
        "n_lines_no_buyer",
        "lines_no_buyer",
    ]
    if buying_centre.empty:
        return pd.DataFrame(columns=cols)
    bc = buying_centre.assign(
        account_id=buying_centre["account_id"].astype(str),
        _v=pd.to_numeric(buying_centre["whitespace_value"]).astype(float),
        _no=~buying_centre["has_buyer"].astype(bool),
    ).sort_values(["account_id", "_v"], ascending=[True, False], kind="stable")
    bc["_v_no"] = bc["_v"].where(bc["_no"], 0.0)
    g = bc.groupby("account_id", sort=True)
    out = pd.DataFrame(
        {
            "whitespace_total": g["_v"].sum(),
            "whitespace_no_buyer": g["_v_no"].sum(),
            "n_lines": g.size(),
            "n_lines_no_buyer": g["_no"].sum().astype(int),
        }
    )
    out["share_no_buyer"] = out["whitespace_no_buyer"] / out["whitespace_total"].where(
        out["whitespace_total"] > 0
    )
    lines = (
        bc[bc["_no"]].groupby("account_id")["product_line"].agg(lambda x: ", ".join(x.astype(str)))
    )
    out["lines_no_buyer"] = lines.reindex(out.index).fillna("")
    out = out.reset_index().sort_values(
        ["whitespace_no_buyer", "account_id"], ascending=[False, True], kind="stable"
    )
    return out[cols].reset_index(drop=True)


# --------------------------------------------------------------------------- layout


def tree_layout(parents: pd.Series) -> pd.DataFrame:
    """Tidy tree layout of a reporting structure (a forest), computed with numpy.

    Leaves are placed on consecutive x positions in depth-first order (children
    sorted by their id); each parent sits at the midpoint of its first and last
    child; y is minus the depth. Subtrees never overlap and the drawing is
    deterministic (Wetherell & Shannon 1979, simplified). A node whose parent is
    missing or unknown is a root; a reporting cycle is cut at its smallest id.

    Parameters
    ----------
    parents : pandas.Series
        Index: node id; values: parent id or missing.

    Returns
    -------
    pandas.DataFrame
        Index node id; columns ``parent`` (after cutting cycles), ``depth``, ``x``, ``y``.

    References
    ----------
    Wetherell, C., & Shannon, A. (1979). Tidy drawings of trees. IEEE Transactions on
    Software Engineering SE-5(5), 514-520.
    """
    ids = [str(i) for i in parents.index]
    if len(set(ids)) != len(ids):
        raise ValueError("tree_layout: node ids must be unique")
    par = {
        str(i): (str(p) if pd.notna(p) and str(p) in set(ids) and str(p) != str(i) else None)
        for i, p in parents.items()
    }
    children: dict[str | None, list[str]] = {}
    for node in sorted(ids):
        children.setdefault(par[node], []).append(node)
    x: dict[str, float] = {}
    depth: dict[str, int] = {}
    next_x = [0.0]

    def place(root: str) -> None:
        # iterative post-order to avoid recursion limits on deep chains
        stack = [(root, 0, False)]
        while stack:
            node, dep, done = stack.pop()
            if node in x:
                continue
            depth[node] = dep
            kids = [k for k in children.get(node, []) if k not in x]
            if done or not kids:
                if kids_all := [k for k in children.get(node, []) if k in x]:
                    x[node] = (x[kids_all[0]] + x[kids_all[-1]]) / 2
                else:
                    x[node] = next_x[0]
                    next_x[0] += 1.0
                continue
            stack.append((node, dep, True))
            for k in reversed(kids):
                stack.append((k, dep + 1, False))

    for root in children.get(None, []):
        place(root)
    while len(x) < len(ids):  # nodes on a cycle: cut it at the smallest id
        cut = min(i for i in ids if i not in x)
        children[par[cut]].remove(cut)
        par[cut] = None
        children.setdefault(None, []).append(cut)
        place(cut)
    out = pd.DataFrame(
        {
            "parent": [par[i] for i in ids],
            "depth": [depth[i] for i in ids],
            "x": [x[i] for i in ids],
        },
        index=pd.Index(ids, name="node"),
    )
    out["y"] = -out["depth"].astype(float)
    return out


def contact_list(
    stakeholders: pd.DataFrame,
    account_id,
    *,
    as_of,
    activities: pd.DataFrame | None = None,
    show_personal_data: bool = False,
    salt: str = "",
    lang: Literal["en", "ja"] = "en",
) -> pd.DataFrame:
    """An account's contacts as a plan table, most influential first.

    Parameters
    ----------
    stakeholders : pandas.DataFrame
        The stakeholders table.
    account_id : str
    as_of : date-like
        Reference date; touches after it are ignored.
    activities : pandas.DataFrame, optional
        Activities tagged with a ``contact_id`` count as touches.
    show_personal_data : bool, default False
        Name and job title of each person; otherwise a stable pseudonym
        (:func:`pseudonym`) and no title.
    salt : str
        Pseudonym salt.
    lang : {"en", "ja"}
        Language of the role and stance labels.

    Returns
    -------
    pandas.DataFrame
        ``person``, ``title`` (only with ``show_personal_data``), ``role``,
        ``influence``, ``stance``, ``last_touch`` (date or NaT),
        ``days_since_touch`` (float, NaN when never touched); sorted by
        influence (high first), then the longest without a touch.
    """
    check_language(lang)
    people = account_contacts(stakeholders, account_id)
    as_of = pd.Timestamp(as_of)
    last = pd.to_datetime(last_touch(people, activities, as_of).to_numpy())
    named = people["name"] if show_personal_data and "name" in people.columns else None
    person = [
        name if isinstance(name, str) and name else pseudonym(cid, salt)
        for cid, name in zip(
            people["contact_id"],
            named if named is not None else [None] * len(people),
            strict=True,
        )
    ]
    out = pd.DataFrame(
        {
            "person": person,
            "role": [t(f"stakeholders.{r}", lang) for r in people["role"]],
            "influence": people["influence"].astype(int).to_numpy(),
            "stance": [t(f"stakeholders.{x}", lang) for x in people["stance"]],
            "last_touch": last,
            "days_since_touch": (as_of - last).days.to_numpy(dtype=float),
        }
    )
    if show_personal_data and "title" in people.columns:
        out.insert(1, "title", people["title"].to_numpy())
    order = np.lexsort(
        (
            people["contact_id"].to_numpy(),
            -out["days_since_touch"].fillna(1e9).to_numpy(),
            -out["influence"].to_numpy(),
        )
    )
    return out.iloc[order].reset_index(drop=True)


__all__ = [
    "PERSONAL_COLUMNS",
    "RISK_FLAGS",
    "StakeholderInputError",
    "StakeholderSettings",
    "account_contacts",
    "buying_centre_whitespace",
    "contact_list",
    "coverage",
    "governance_cadence",
    "last_touch",
    "pseudonym",
    "relationship_risks",
    "risk_summary",
    "role_stance_matrix",
    "tree_layout",
    "whitespace_buyer_summary",
]
