"""The lead sink: writes one page of records set-based, inside the page's transaction.

Per page (ARCHITECTURE §6), never row by row:

1. in Python, derive each record's identity keys and fold records that share a key inside the
   page into one (the extra copies count as `unchanged`; a record without keys is `rejected`);
2. COPY the survivors and their keys into temp staging tables;
3. one join against `lead_keys` finds the existing lead of each record (highest-priority key
   wins); records matching a lead another record of the page already matched fold into it;
4. INSERT the new leads, UPDATE matched leads filling only empty fields, attach keys that no
   other lead owns (keys owned by another lead are counted as merge candidates), and write one
   provenance row per (job, lead).

A per-domain transaction-level advisory lock serialises sinks of the same domain, so two jobs
writing the same new key can neither collide on `lead_keys` nor create the lead twice.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, fields, replace
from typing import Any, cast

import psycopg
from sqlalchemy import String

from connectors.base import LeadRecord, RecordError
from connectors.normalize import clean_text, keys_for, normalize_email, normalize_linkedin_url
from models.leads import LEAD_FIELDS, Lead

#: lead columns a record fills, with their length limits read off the model (one source)
FIELD_LIMITS: dict[str, int] = {
    name: int(cast(String, Lead.__table__.c[name].type).length or 0) for name in LEAD_FIELDS
}
LEAD_COLUMNS = LEAD_FIELDS
_IDENTITY_KEY_PREFIX = {"email": "email:", "linkedin_url": "li:"}
assert set(LEAD_COLUMNS) <= {f.name for f in fields(LeadRecord)}


@dataclass
class SinkResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    merge_candidates: int = 0
    errors: list[RecordError] = field(default_factory=list)
    lead_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass
class _Group:
    values: dict[str, Any]
    keys: list[str]
    external_id: str | None
    raw: dict[str, Any] | None


_SETUP = f"""
CREATE TEMP TABLE IF NOT EXISTS sink_stage (
    idx integer PRIMARY KEY,
    new_id uuid NOT NULL,
    lead_id uuid,
    applier boolean NOT NULL DEFAULT false,
    external_id text,
    raw jsonb,
    {", ".join(f"{c} text" for c in LEAD_COLUMNS)}
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS sink_keys (
    idx integer NOT NULL,
    pos integer NOT NULL,
    key text NOT NULL,
    owner uuid
) ON COMMIT DELETE ROWS;
"""

# One unique-index probe per staged key, whatever the (absent) statistics of the temp tables
# say; every later step reads `owner` instead of joining the domain's whole `lead_keys`.
_RESOLVE_OWNERS = """
UPDATE sink_keys k SET owner = (
    SELECT lk.lead_id FROM lead_keys lk WHERE lk.domain_id = %(domain_id)s AND lk.key = k.key
)
"""

_MATCH = """
UPDATE sink_stage s SET lead_id = m.owner
FROM (
    SELECT DISTINCT ON (idx) idx, owner FROM sink_keys
    WHERE owner IS NOT NULL
    ORDER BY idx, pos
) m
WHERE s.idx = m.idx
"""

# The first staged record matching a lead applies its fields; later ones fold into it.
_APPLIERS = """
UPDATE sink_stage s SET applier = true
FROM (SELECT min(idx) AS idx FROM sink_stage WHERE lead_id IS NOT NULL GROUP BY lead_id) a
WHERE s.idx = a.idx
"""

# An identity field whose key another lead owns must not be copied onto the matched lead.
# (fold_page guarantees a staged email / LinkedIn URL always has its key among the row's keys.)
_DROP_FOREIGN_IDENTITY = """
UPDATE sink_stage s SET
    email = CASE WHEN fe.owner IS NULL OR fe.owner = s.lead_id THEN s.email END,
    linkedin_url = CASE WHEN fl.owner IS NULL OR fl.owner = s.lead_id
                        THEN s.linkedin_url END
FROM sink_stage s2
LEFT JOIN sink_keys fe ON fe.idx = s2.idx AND fe.key = 'email:' || s2.email
LEFT JOIN sink_keys fl ON fl.idx = s2.idx AND fl.key = 'li:' || s2.linkedin_url
WHERE s.idx = s2.idx AND s.lead_id IS NOT NULL
  AND ((fe.owner IS NOT NULL AND fe.owner <> s.lead_id)
       OR (fl.owner IS NOT NULL AND fl.owner <> s.lead_id))
"""

_INSERT_NEW = f"""
INSERT INTO leads (id, domain_id, campaign_id, {", ".join(LEAD_COLUMNS)})
SELECT new_id, %(domain_id)s, %(campaign_id)s,
       {", ".join(f"left({c}, {n})" for c, n in FIELD_LIMITS.items())}
FROM sink_stage WHERE lead_id IS NULL
ORDER BY idx
"""

_FILL_EMPTY = f"""
UPDATE leads l SET
    {", ".join(f"{c} = COALESCE(l.{c}, left(s.{c}, {n}))" for c, n in FIELD_LIMITS.items())},
    campaign_id = COALESCE(l.campaign_id, %(campaign_id)s)
FROM sink_stage s
WHERE s.applier AND l.id = s.lead_id AND (
    {" OR ".join(f"(l.{c} IS NULL AND s.{c} IS NOT NULL)" for c in LEAD_COLUMNS)}
    OR (l.campaign_id IS NULL AND %(campaign_id)s::uuid IS NOT NULL)
)
RETURNING l.id
"""

_ATTACH_KEYS = """
INSERT INTO lead_keys (domain_id, key, lead_id)
SELECT %(domain_id)s, k.key, COALESCE(s.lead_id, s.new_id)
FROM sink_keys k JOIN sink_stage s USING (idx)
WHERE k.owner IS NULL
ORDER BY k.idx, k.pos
ON CONFLICT (domain_id, key) DO NOTHING
RETURNING lead_id
"""

_MERGE_CANDIDATES = """
SELECT count(*) FROM sink_keys k JOIN sink_stage s USING (idx)
WHERE k.owner IS NOT NULL AND k.owner <> COALESCE(s.lead_id, s.new_id)
"""

_PROVENANCE = """
INSERT INTO lead_sources (domain_id, lead_id, data_source_id, job_id, external_id, raw)
SELECT DISTINCT ON (COALESCE(lead_id, new_id))
       %(domain_id)s, COALESCE(lead_id, new_id), %(data_source_id)s, %(job_id)s, external_id, raw
FROM sink_stage
ORDER BY COALESCE(lead_id, new_id), idx
ON CONFLICT (job_id, lead_id) DO NOTHING
"""


def fold_page(records: list[LeadRecord], provider: str) -> tuple[list[_Group], SinkResult]:
    """Step 1: keys per record and in-page folding. Pure Python, no I/O."""
    result = SinkResult()
    groups: list[_Group] = []
    owner: dict[str, int] = {}
    for number, record in enumerate(records, start=1):
        # Identity fields are stored in the form their keys use, whatever the connector sent.
        email = normalize_email(record.email)
        linkedin = normalize_linkedin_url(record.linkedin_url)
        if email != record.email or linkedin != record.linkedin_url:
            record = replace(record, email=email, linkedin_url=linkedin)
        keys = keys_for(email, linkedin, clean_text(record.external_id, 300), provider)
        if not keys:
            result.rejected += 1
            result.errors.append(
                RecordError(
                    code="no_identity",
                    message="record has neither a valid email, a LinkedIn profile URL nor an id",
                    record=number,
                    raw=_short_raw(record),
                )
            )
            continue
        found = next((owner[k] for k in keys if k in owner), None)
        if found is None:
            values = {c: getattr(record, c) for c in LEAD_COLUMNS}
            groups.append(_Group(values, list(keys), record.external_id, record.raw))
            for key in keys:
                owner[key] = len(groups) - 1
            continue
        result.unchanged += 1
        group = groups[found]
        for key in keys:
            if key not in owner:
                owner[key] = found
                group.keys.append(key)
        for column in LEAD_COLUMNS:
            if group.values[column] is None:
                value = getattr(record, column)
                # an identity value whose key another record of the page owns stays with it
                prefix = _IDENTITY_KEY_PREFIX.get(column)
                if prefix and value is not None and owner.get(prefix + value) != found:
                    continue
                group.values[column] = value
    return groups, result


def write_page(
    conn: psycopg.Connection[Any],
    *,
    domain_id: uuid.UUID,
    data_source_id: uuid.UUID | None,
    job_id: uuid.UUID | None,
    provider: str,
    records: list[LeadRecord],
    campaign_id: uuid.UUID | None = None,
) -> SinkResult:
    """Write `records` in the caller's open transaction on `conn`; the caller commits."""
    groups, result = fold_page(records, provider)
    if not groups:
        return result
    params = {
        "domain_id": domain_id,
        "campaign_id": campaign_id,
        "data_source_id": data_source_id,
        "job_id": job_id,
    }
    with conn.cursor() as cur:
        cur.execute(_SETUP)
        cur.execute(
            "SELECT pg_advisory_xact_lock(hashtext('dashin.sink'), hashtext(%s))", (str(domain_id),)
        )
        new_ids = [uuid.uuid4() for _ in groups]
        columns = ("idx", "new_id", "external_id", "raw", *LEAD_COLUMNS)
        with cur.copy(f"COPY sink_stage ({', '.join(columns)}) FROM STDIN") as copy:
            for idx, group in enumerate(groups):
                raw = json.dumps(group.raw, default=str) if group.raw is not None else None
                copy.write_row(
                    (
                        idx,
                        new_ids[idx],
                        group.external_id,
                        raw,
                        *(group.values[c] for c in LEAD_COLUMNS),
                    )
                )
        with cur.copy("COPY sink_keys (idx, pos, key) FROM STDIN") as copy:
            for idx, group in enumerate(groups):
                for pos, key in enumerate(group.keys):
                    copy.write_row((idx, pos, key))
        cur.execute("ANALYZE sink_stage; ANALYZE sink_keys")
        cur.execute(_RESOLVE_OWNERS, params)
        cur.execute(_MATCH, params)
        matched = cur.rowcount
        changed: set[uuid.UUID] = set()
        if matched:  # with no owned key on the page there is nothing to merge into
            cur.execute(_APPLIERS, params)
            cur.execute(_DROP_FOREIGN_IDENTITY, params)
        cur.execute(_INSERT_NEW, params)
        result.inserted = cur.rowcount
        if matched:
            cur.execute(_FILL_EMPTY, params)
            changed.update(row[0] for row in cur.fetchall())
        cur.execute(_ATTACH_KEYS, params)
        new_id_set = set(new_ids)
        changed.update(row[0] for row in cur.fetchall() if row[0] not in new_id_set)
        if matched:
            cur.execute(_MERGE_CANDIDATES, params)
            row = cur.fetchone()
            result.merge_candidates = int(row[0]) if row else 0
        cur.execute(_PROVENANCE, params)
        # matched records beyond the first per lead fold into it: unchanged
        result.updated = len(changed)
        result.unchanged += matched - result.updated
    return result


def _short_raw(record: LeadRecord) -> str:
    shown = {k: v for k, v in ((c, getattr(record, c)) for c in LEAD_COLUMNS) if v}
    return json.dumps(shown or (record.raw or {}), default=str)[:500]
