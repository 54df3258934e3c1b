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
* :func:`stakeholder_map` and :func:`org_chart`: the account's buying centre as
  charts.

Personal data
-------------
Names, e-mails and job titles are personal data. The charts show a role and a
stable pseudonym (:func:`pseudonym`, e.g. ``C-3F2A``) unless
``show_personal_data=True``; the tables never carry names or e-mails. The
pseudonym is a keyed hash of the contact id with a secret key of this
installation (:func:`installation_key`, a file outside every dataset and
report), so pseudonyms cannot be reversed by hashing known contact ids.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kam_analysis.schemas import ACTIVITY_KINDS, ROLES, STANCE_SCORE, STANCES

PERSONAL_COLUMNS: tuple[str, ...] = ("name", "email", "title")
"""Stakeholder columns that are personal data and never leave this module by default."""

STAKEHOLDER_COLUMNS: tuple[str, ...] = ("contact_id", "account_id", "role", "influence", "stance")
ACTIVITY_COLUMNS: tuple[str, ...] = ("account_id", "date", "kind")

STANCE_COLOURS: dict[str, str] = {
    "champion": "#1a9641",
    "supporter": "#a6d96a",
    "neutral": "#bdbdbd",
    "skeptic": "#fdae61",
    "blocker": "#d7191c",
}
"""Diverging colours from supportive (green) to opposed (red)."""

LABEL_PREFIX = "stakeholders."
"""Key prefix of this module's labels in ``kam_analysis/locale/<lang>.json``."""


def _locale_labels(prefix: str = LABEL_PREFIX) -> dict[str, dict[str, str]]:
    """This module's labels per language, read from the shared translation table."""
    out: dict[str, dict[str, str]] = {}
    for lang in ("en", "ja"):
        text = resources.files("kam_analysis").joinpath("locale", f"{lang}.json").read_text("utf-8")
        table = json.loads(text)
        out[lang] = {k[len(prefix) :]: v for k, v in table.items() if k.startswith(prefix)}
    return out


LABELS: dict[str, dict[str, str]] = _locale_labels()
"""Chart labels in English and Japanese: the ``stakeholders.*`` keys of the locale files
(role and stance names, axis titles, notes), without the prefix."""

RISK_REASONS: dict[str, dict[str, str]] = {
    "en": {
        "single_threaded": "single-threaded: {detail}",
        "no_executive_sponsor": "no executive sponsor (no executive at supporter or better)",
        "high_influence_blocker": "high-influence blocker ({n})",
        "stale_contacts": "{n} key contact(s) not touched in {days} days",
        "champion_concentration": "champions: {detail}",
        "detail_contacts": "{n} contact(s)",
        "detail_share": "one contact holds {share:.0%} of the activities",
        "detail_none": "none",
        "detail_one": "only one",
        "detail_role": "all in role {role}",
    },
    "ja": {
        "single_threaded": "単一窓口: {detail}",
        "no_executive_sponsor": "経営層スポンサー不在",
        "high_influence_blocker": "影響力の大きい反対者 ({n}名)",
        "stale_contacts": "主要コンタクト{n}名と{days}日以上接触なし",
        "champion_concentration": "推進者: {detail}",
        "detail_contacts": "窓口{n}名のみ",
        "detail_share": "1名が活動の{share:.0%}を占める",
        "detail_none": "不在",
        "detail_one": "1名のみ",
        "detail_role": "全員が{role}",
    },
}


class StakeholderInputError(ValueError):
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


def _last_touch(
    st: pd.DataFrame, activities: pd.DataFrame | None, as_of: pd.Timestamp
) -> pd.Series:
    """Last touch per contact: last_contact_date or its latest activity, not after as_of."""
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


def _stance_score(stance: pd.Series) -> pd.Series:
    return stance.map(STANCE_SCORE).astype(float)


def _best_stance(scores: pd.Series) -> str | float:
    if scores.isna().all():
        return np.nan
    inv = {v: k for k, v in STANCE_SCORE.items()}
    return inv[int(scores.max())]


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
        _last=_last_touch(stakeholders, activities, as_of).to_numpy(),
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
        out[f"{role}_best_stance"] = r["_score"].agg(_best_stance).reindex(ids)
        out[f"{role}_days_since_contact"] = r["_days"].min().reindex(ids)
        covered.append(out[f"{role}_contacts"] > 0)
    cov = pd.concat(covered, axis=1)
    cov.columns = list(ROLES)
    out.insert(1, "roles_covered", cov.sum(axis=1).astype(int))
    out.insert(2, "role_coverage", cov.sum(axis=1) / len(ROLES))
    out.insert(
        3, "roles_missing", cov.apply(lambda row: ", ".join(r for r in ROLES if not row[r]), axis=1)
    )
    return out.reset_index()


def relationship_risks(
    stakeholders: pd.DataFrame,
    activities: pd.DataFrame | None = None,
    as_of=None,
    *,
    accounts: pd.DataFrame | None = None,
    stale_days: int = 90,
    stale_min_influence: int = 3,
    single_thread_share: float = 0.6,
    activity_window_days: int = 365,
    sponsor_min_stance: str = "supporter",
    blocker_min_influence: int = 4,
    lang: Literal["en", "ja"] = "en",
) -> pd.DataFrame:
    """Flag relationship risks per account.

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
    lang : {"en", "ja"}
        Language of ``reasons``.

    Returns
    -------
    pandas.DataFrame
        One row per account: ``account_id, n_contacts, top_contact_share,
        n_stale_contacts, single_threaded, no_executive_sponsor,
        high_influence_blocker, stale_contacts, champion_concentration, n_flags,
        reasons`` (``"; "``-joined explanations, empty when no flag).
    """
    _check_stakeholders(stakeholders)
    if activities is not None:
        _check(activities, "activities", ACTIVITY_COLUMNS)
    if sponsor_min_stance not in STANCES:
        raise ValueError(f"sponsor_min_stance must be one of {list(STANCES)}")
    as_of = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.today().normalize()
    txt = RISK_REASONS[lang]
    st = stakeholders.assign(
        account_id=stakeholders["account_id"].astype(str),
        contact_id=stakeholders["contact_id"].astype(str),
        _score=_stance_score(stakeholders["stance"]),
        _last=_last_touch(stakeholders, activities, as_of).to_numpy(),
    )
    ids = list(dict.fromkeys(st["account_id"]))
    if accounts is not None:
        acc = accounts["account_id"].astype(str).tolist()
        ids = acc + [i for i in ids if i not in set(acc)]

    share = pd.Series(np.nan, index=ids, dtype=float)
    if activities is not None and "contact_id" in activities.columns:
        d = pd.to_datetime(activities["date"])
        win = activities[
            (d <= as_of) & (d > as_of - pd.Timedelta(days=activity_window_days))
        ].dropna(subset=["contact_id"])
        if len(win):
            cnt = win.groupby([win["account_id"].astype(str), win["contact_id"].astype(str)]).size()
            share = (cnt.groupby(level=0).max() / cnt.groupby(level=0).sum()).reindex(ids)
    sponsor_min = STANCE_SCORE[sponsor_min_stance]
    rows = []
    for acc_id in ids:
        s = st[st["account_id"] == acc_id]
        n = len(s)
        top = share.get(acc_id, np.nan)
        reasons = []
        single = n <= 1 or (not np.isnan(top) and top >= single_thread_share)
        if single:
            detail = (
                txt["detail_contacts"].format(n=n)
                if n <= 1
                else txt["detail_share"].format(share=top)
            )
            reasons.append(txt["single_threaded"].format(detail=detail))
        no_sponsor = not ((s["role"] == "executive") & (s["_score"] >= sponsor_min)).any()
        if no_sponsor:
            reasons.append(txt["no_executive_sponsor"])
        blockers = int(
            ((s["influence"] >= blocker_min_influence) & (s["stance"] == "blocker")).sum()
        )
        if blockers:
            reasons.append(txt["high_influence_blocker"].format(n=blockers))
        key = s[s["influence"] >= stale_min_influence]
        stale_n = int(((as_of - key["_last"]).dt.days.fillna(np.inf) > stale_days).sum())
        if stale_n:
            reasons.append(txt["stale_contacts"].format(n=stale_n, days=stale_days))
        champs = s[s["stance"] == "champion"]
        if len(champs) == 0:
            conc, detail = True, txt["detail_none"]
        elif len(champs) == 1:
            conc, detail = True, txt["detail_one"]
        elif champs["role"].nunique() == 1:
            role = champs["role"].iloc[0]
            conc, detail = (
                True,
                txt["detail_role"].format(
                    role=role if lang == "en" else LABELS[lang].get(role, role)
                ),
            )
        else:
            conc, detail = False, ""
        if conc:
            reasons.append(txt["champion_concentration"].format(detail=detail))
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
    at_risk_share: float = 0.5,
) -> pd.DataFrame:
    """Review cadence over the trailing 12 months against plan, per account.

    Parameters
    ----------
    activities : pandas.DataFrame
        ``account_id, date, kind``.
    as_of : date-like
        The window is (as_of - 12 months, as_of].
    plan : dict, default {"qbr": 4, "executive_meeting": 2}
        Touchpoints per year by activity kind, or per tier: ``{tier: {kind: n}}``.
    tier : pandas.Series, optional
        Tier per account (index ``account_id``); needed for a per-tier plan.
        Accounts in a tier without a plan get status ``no_plan``.
    accounts : pandas.DataFrame, optional
        Account universe (accounts without activities count 0).
    at_risk_share : float, default 0.5
        ``on_track`` when every kind reaches its plan, ``at_risk`` when every kind
        reaches at least this share of it, ``off_track`` otherwise.

    Returns
    -------
    pandas.DataFrame
        ``account_id, tier, <kind>_count, <kind>_plan`` for every planned kind,
        ``attainment`` (lowest count / plan, capped at 1) and ``status``.
    """
    _check(activities, "activities", ACTIVITY_COLUMNS)
    plan = dict(plan) if plan is not None else {"qbr": 4, "executive_meeting": 2}
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
        t = pd.Series(tier)
        t.index = t.index.astype(str)
        ids = ids + [i for i in t.index if i not in set(ids)]
    counts = (
        win.assign(account_id=win["account_id"].astype(str))
        .groupby(["account_id", "kind"])
        .size()
        .unstack(fill_value=0)
        .reindex(index=ids, columns=kinds, fill_value=0)
    )
    out = pd.DataFrame({"account_id": ids})
    out["tier"] = t.reindex(ids).to_numpy() if tier is not None else None
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
        attain >= 1.0, "on_track", np.where(attain >= at_risk_share, "at_risk", "off_track")
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


# --------------------------------------------------------------------------- layout & charts


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


def _font(lang: str):
    if lang != "ja":
        return None
    from matplotlib.font_manager import FontProperties
    from matplotlib_fontja import get_font_ttf_path

    return FontProperties(fname=get_font_ttf_path())


def _labels(lang: str) -> dict[str, str]:
    if lang not in LABELS:
        raise ValueError(f"lang must be one of {list(LABELS)}, got {lang!r}")
    return LABELS[lang]


def _account_people(stakeholders: pd.DataFrame, account_id) -> pd.DataFrame:
    _check_stakeholders(stakeholders)
    people = stakeholders[stakeholders["account_id"].astype(str) == str(account_id)]
    return people.assign(contact_id=people["contact_id"].astype(str)).reset_index(drop=True)


def _node_label(row, show_personal_data: bool, salt: str, lab: dict[str, str]) -> str:
    role = lab.get(row["role"], str(row["role"]))
    if show_personal_data and isinstance(row.get("name"), str) and row.get("name"):
        return f"{row['name']}\n{role}"
    return f"{role}\n{pseudonym(row['contact_id'], salt)}"


def _stance_legend(ax, lab: dict[str, str], font) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", linestyle="", color=STANCE_COLOURS[s], label=lab[s])
        for s in STANCES
    ]
    prop = font.copy() if font is not None else None
    if prop is not None:
        prop.set_size(8)
    ax.legend(handles=handles, loc="upper right", frameon=False, prop=prop, fontsize=8)


def org_chart(
    stakeholders: pd.DataFrame,
    account_id,
    ax=None,
    show_personal_data: bool = False,
    *,
    salt: str = "",
    lang: Literal["en", "ja"] = "en",
):
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
        Pseudonym key (:func:`pseudonym`).
    lang : {"en", "ja"}

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    lab = _labels(lang)
    font = _font(lang)
    people = _account_people(stakeholders, account_id)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    ax.set_title(f"{lab['chart_title']}: {account_id}", fontproperties=font, parse_math=False)
    ax.set_axis_off()
    if people.empty:
        ax.text(0.5, 0.5, lab["no_contacts"], ha="center", va="center", fontproperties=font)
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
            lab["no_reports_to"],
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
            _node_label(row, show_personal_data, salt, lab),
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
    _stance_legend(ax, lab, font)
    return ax


def stakeholder_map(
    stakeholders: pd.DataFrame,
    account_id,
    ax=None,
    show_personal_data: bool = False,
    lang: Literal["en", "ja"] = "en",
    *,
    as_of=None,
    activities: pd.DataFrame | None = None,
    salt: str = "",
    stale_days: int = 90,
):
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
    stale_days : int

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    lab = _labels(lang)
    font = _font(lang)
    people = _account_people(stakeholders, account_id)
    as_of = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp.today().normalize()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5.5))
    ax.set_title(f"{lab['map_title']}: {account_id}", fontproperties=font, parse_math=False)
    ax.axvspan(-2.6, -0.5, ymin=0.5, color="#d7191c", alpha=0.05, lw=0)
    ax.axvspan(0.5, 2.6, ymin=0.5, color="#1a9641", alpha=0.05, lw=0)
    ax.axvline(0, color="#cccccc", lw=0.8)
    ax.axhline(3, color="#cccccc", lw=0.8)
    ax.set_xlim(-2.6, 2.6)
    ax.set_ylim(0.4, 5.6)
    ax.set_xticks(
        [STANCE_SCORE[s] for s in STANCES], [lab[s] for s in STANCES], fontproperties=font
    )
    ax.set_yticks([1, 2, 3, 4, 5])
    ax.set_xlabel(lab["stance"] + f"  ({lab['size_note']})", fontproperties=font)
    ax.set_ylabel(lab["influence"], fontproperties=font)
    if people.empty:
        ax.text(0, 3, lab["no_contacts"], ha="center", va="center", fontproperties=font)
        return ax
    last = _last_touch(people, activities, as_of).to_numpy()
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
            _node_label(row.to_dict(), show_personal_data, salt, lab),
            (xs[i], ys[i]),
            xytext=(6, 4),
            textcoords="offset points",
            fontsize=7,
            fontproperties=font,
            parse_math=False,
        )
    return ax


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
    lab = _labels(lang)
    people = _account_people(stakeholders, account_id)
    as_of = pd.Timestamp(as_of)
    last = pd.to_datetime(_last_touch(people, activities, as_of).to_numpy())
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
            "role": [lab.get(r, str(r)) for r in people["role"]],
            "influence": people["influence"].astype(int).to_numpy(),
            "stance": [lab.get(x, str(x)) for x in people["stance"]],
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


def stakeholder_panels(
    stakeholders: pd.DataFrame,
    account_ids: Sequence[str],
    *,
    titles: Mapping[str, str] | None = None,
    show_personal_data: bool = False,
    lang: Literal["en", "ja"] = "en",
    as_of=None,
    activities: pd.DataFrame | None = None,
    salt: str = "",
    stale_days: int = 90,
    org_charts: bool | None = None,
    row_height: float = 4.2,
    width: float = 10.0,
):
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
        For an empty ``account_ids``.
    """
    import matplotlib.pyplot as plt

    ids = [str(a) for a in account_ids]
    if not ids:
        raise ValueError("stakeholder_panels: no account_ids given")
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
    font = _font(lang)
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
            row[1].set_title(_labels(lang)["chart_title"], loc="left", fontproperties=font)
    return fig


__all__ = [
    "LABELS",
    "LABEL_PREFIX",
    "PERSONAL_COLUMNS",
    "RISK_FLAGS",
    "STANCE_COLOURS",
    "StakeholderInputError",
    "StakeholderSettings",
    "buying_centre_whitespace",
    "contact_list",
    "coverage",
    "governance_cadence",
    "org_chart",
    "pseudonym",
    "relationship_risks",
    "risk_summary",
    "role_stance_matrix",
    "stakeholder_map",
    "stakeholder_panels",
    "tree_layout",
    "whitespace_buyer_summary",
]
