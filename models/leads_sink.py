"""The lead sink, the leads table's writer: one page of records set-based, in the caller's
transaction (the runner's page transaction, or a manual lead's request).

Per page (ARCHITECTURE §6), never row by row:

1. in Python, derive each record's identity keys and fold records that share a key inside the
   page into one (the extra copies count as `unchanged`; a record without keys is `rejected`);
2. one statement reads the owner of every key of the page (a unique-index probe per key) and
   which of each owner's fields are empty;
3. in Python, from those rows: the existing lead of each record (highest-priority key wins;
   records matching a lead another record of the page already matched fold into it), keys to
   attach (keys owned by another lead are counted as merge candidates), and the matched leads
   that would actually gain a field;
4. INSERT the new leads, fill the empty fields of only those matched leads (never overwriting;
   an upsert that finds them by primary key), attach the unowned keys, and write one
   provenance row per (job, lead).

A page whose records all match unchanged leads thus costs one read and the provenance rows.
No temp tables: nothing to truncate at commit, and nothing to survive transaction pooling.
A per-domain transaction-level advisory lock serialises sinks of the same domain, so two jobs
writing the same new key can neither collide on `lead_keys` nor create the lead twice.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from models import suppressions
from models.scoring import COMPLETENESS_FIELDS, new_lead_score
from records import FIELD_MAX_LEN, LEAD_FIELDS, LeadRecord, RecordError
from records.normalize import clean_text, keys_for, normalize_email, normalize_linkedin_url

#: lead columns a record fills, with their length limits (declared once, in `records`)
FIELD_LIMITS: dict[str, int] = {name: FIELD_MAX_LEN[name] for name in LEAD_FIELDS}
LEAD_COLUMNS = LEAD_FIELDS
_IDENTITY_KEY_PREFIX = {"email": "email:", "linkedin_url": "li:"}


@dataclass
class SinkResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    merge_candidates: int = 0
    errors: list[RecordError] = field(default_factory=list)
    #: the leads the page inserted or changed (inserted first)
    lead_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass
class _Group:
    values: dict[str, Any]
    keys: list[str]
    external_id: str | None
    raw: dict[str, Any] | None
    #: the 1-based number of the group's first record in the page, and how many records folded
    number: int = 0
    count: int = 1


# With the lock, JIT off for the rest of the transaction: a 5,000-record page's probes cost
# past `jit_above_cost`, and compiling them took 8 ms to save nothing (measured).
_LOCK = """
SELECT set_config('jit', 'off', true),
       pg_advisory_xact_lock(hashtext('dashin.sink'), hashtext(%s))
"""

#: bit i set when LEAD_COLUMNS[i] is NULL on the lead; the last bit stands for campaign_id
_CAMPAIGN_BIT = 1 << len(LEAD_COLUMNS)
_NULL_MASK = " | ".join(
    [f"((l.{c} IS NULL)::int << {i})" for i, c in enumerate(LEAD_COLUMNS)]
    + [f"((l.campaign_id IS NULL)::int << {len(LEAD_COLUMNS)})"]
)

# One unique-index probe per key of the page (plus one primary-key probe of its owner for the
# owner's empty fields), whatever the statistics say: written as `lk.key = ANY(keys)` the
# planner, misled by a stale estimate of the domain's keys, scanned all of them and filtered
# (measured: 47,209 rows read for 6,638 keys). LIMIT 1 keeps the lateral probe from being
# flattened into a join it could hash. Matching, merge candidates and which matched leads could
# gain a field are then decided in Python from these rows.
_OWNERS = f"""
SELECT k.key, o.lead_id, (SELECT {_NULL_MASK} FROM leads l WHERE l.id = o.lead_id)
FROM unnest(%(keys)b::text[]) AS k(key)
CROSS JOIN LATERAL (
    SELECT lk.lead_id FROM lead_keys lk
    WHERE lk.domain_id = %(domain_id)s AND lk.key = k.key
    LIMIT 1
) o
"""

# The score is given (the insert trigger then skips the row): a new lead's score depends only
# on which of its fields are filled (models.scoring.new_lead_score). An INSERT from arrays, not
# COPY: PostgreSQL refuses COPY FROM into a table whose row-level security applies (issue 20).
_INSERT_NEW = f"""
INSERT INTO leads (id, domain_id, campaign_id, score, {", ".join(LEAD_COLUMNS)})
SELECT s.id, %(domain_id)s, %(campaign_id)s::uuid, s.score,
    {", ".join(f"s.{c}" for c in LEAD_COLUMNS)}
FROM unnest(
    %(id)b::uuid[], %(score)s::smallint[], {", ".join(f"%({c})b::text[]" for c in LEAD_COLUMNS)}
)
    AS s(id, score, {", ".join(LEAD_COLUMNS)})
"""
#: positions in LEAD_COLUMNS of the fields the score counts
_SCORED = tuple(i for i, c in enumerate(LEAD_COLUMNS) if c in COMPLETENESS_FIELDS)

# Only matched leads known to have an empty field the record fills reach this statement; its
# conflict filter re-checks each one, so it never overwrites. Why an upsert and not
# `UPDATE leads … FROM unnest(…)`: ON CONFLICT finds each lead by a primary-key probe whatever
# the statistics say, while the join was planned from them. With a young domain's statistics
# (or none: a table never analysed) the planner costed the row-level-security policy's
# `domain_id` scan at one row and joined every lead of the domain to the page: 79,005 by 105
# rows and 6 s for one page at 80k leads (docs/BENCHMARKS.md, session 9). Every id exists: the
# owners were read under the domain's lock, and the only writer that deletes leads (erasure)
# takes it too, so no row is ever inserted here. The score given is a placeholder for the
# never-inserted row (the insert trigger then skips it); the update trigger recomputes it.
_FILL_EMPTY = f"""
INSERT INTO leads AS l (id, domain_id, score, {", ".join(LEAD_COLUMNS)})
SELECT s.lead_id, %(domain_id)s, 0, {", ".join(f"s.{c}" for c in LEAD_COLUMNS)}
FROM unnest(%(lead_id)b::uuid[], {", ".join(f"%({c})b::text[]" for c in LEAD_COLUMNS)})
    AS s(lead_id, {", ".join(LEAD_COLUMNS)})
ON CONFLICT (id) DO UPDATE SET
    {", ".join(f"{c} = COALESCE(l.{c}, excluded.{c})" for c in LEAD_COLUMNS)},
    campaign_id = COALESCE(l.campaign_id, %(campaign_id)s)
WHERE {" OR ".join(f"(l.{c} IS NULL AND excluded.{c} IS NOT NULL)" for c in LEAD_COLUMNS)}
    OR (l.campaign_id IS NULL AND %(campaign_id)s::uuid IS NOT NULL)
RETURNING l.id
"""

# Every writer of `lead_keys` is this function, holding the domain's lock, and the owners were
# read after taking it: none of these keys exists. A plain INSERT skips speculative insertion
# (measured ~40% cheaper than ON CONFLICT DO NOTHING); a writer that ever bypassed the lock
# would fail the page on the unique constraint instead of splitting an identity.
_ATTACH_KEYS = """
INSERT INTO lead_keys (domain_id, key, lead_id)
SELECT %(domain_id)s, s.key, s.lead_id
FROM unnest(%(keys)b::text[], %(lead_ids)b::uuid[]) AS s(key, lead_id)
"""

# New leads cannot have a provenance row yet: no ON CONFLICT; matched ones may (an earlier page
# of the job, or a replayed page): ON CONFLICT keeps one row per (job, lead).
_PROVENANCE_NEW = """
INSERT INTO lead_sources (domain_id, lead_id, data_source_id, job_id, external_id, raw)
SELECT %(domain_id)s, s.lead_id, %(data_source_id)s, %(job_id)s, s.external_id, s.raw::jsonb
FROM unnest(%(lead_ids)b::uuid[], %(external_ids)b::text[], %(raws)b::text[])
    AS s(lead_id, external_id, raw)
"""
_PROVENANCE_MATCHED = _PROVENANCE_NEW + "ON CONFLICT (job_id, lead_id) DO NOTHING\n"


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
            groups.append(_Group(values, list(keys), record.external_id, record.raw, number))
            for key in keys:
                owner[key] = len(groups) - 1
            continue
        result.unchanged += 1
        group = groups[found]
        group.count += 1
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
    with conn.cursor() as cur:
        # Taken before reading owners: the previous writer of this domain has committed. An
        # erasure takes it too, so the suppression list read next is the one it left.
        cur.execute(_LOCK, (str(domain_id),))
        groups = _drop_suppressed(conn, domain_id, groups, result)
        if not groups:
            return result
        page_keys = [key for group in groups for key in group.keys]
        cur.execute(_OWNERS, {"domain_id": domain_id, "keys": page_keys})
        owners: dict[str, uuid.UUID] = {}
        empty: dict[uuid.UUID, int] = {}
        for key, lead_id, mask in cur.fetchall():
            owners[key] = lead_id
            empty[lead_id] = mask
        plan = _plan(groups, owners, empty, campaign_id)
        if plan.new:
            cur.execute(_INSERT_NEW, _new_leads(plan.new, domain_id, campaign_id))
        result.inserted = len(plan.new)
        changed: set[uuid.UUID] = set()
        if plan.fills:
            params: dict[str, Any] = {
                "domain_id": domain_id,
                "campaign_id": campaign_id,
                "lead_id": [lead_id for lead_id, _ in plan.fills],
            }
            for column, limit in FIELD_LIMITS.items():
                params[column] = [_cut(values[column], limit) for _, values in plan.fills]
            cur.execute(_FILL_EMPTY, params)
            changed.update(row[0] for row in cur.fetchall())
        if plan.attach:
            cur.execute(
                _ATTACH_KEYS,
                {
                    "domain_id": domain_id,
                    "keys": [key for key, _ in plan.attach],
                    "lead_ids": [lead_id for _, lead_id in plan.attach],
                },
            )
            changed.update(plan.gain_keys)
        sources = {"domain_id": domain_id, "data_source_id": data_source_id, "job_id": job_id}
        for statement, pairs in (
            (_PROVENANCE_NEW, plan.new),
            (_PROVENANCE_MATCHED, plan.provenance),
        ):
            if pairs:
                cur.execute(statement, {**sources, **_provenance(pairs)})
    result.merge_candidates = plan.merge_candidates
    # what the page's event names (`models.domain_events`): new leads first, then filled ones
    result.lead_ids = [lead_id for lead_id, _ in plan.new] + sorted(changed)
    # matched records beyond the first per lead fold into it: unchanged
    result.updated = len(changed)
    result.unchanged += plan.matched - result.updated
    return result


def _drop_suppressed(
    conn: psycopg.Connection[Any], domain_id: uuid.UUID, groups: list[_Group], result: SinkResult
) -> list[_Group]:
    """Groups whose person the domain suppressed (any key, or the email's domain) are rejected
    with `suppressed`, every folded record counted: they are never written (issue 19)."""
    hashes: dict[int, list[str]] = {}
    for index, group in enumerate(groups):
        keys = list(group.keys)
        domain_key = suppressions.email_domain_key(group.values["email"])
        if domain_key is not None:
            keys.append(domain_key)
        hashes[index] = [suppressions.key_hash(k) for k in keys]
    hit = suppressions.suppressed_hashes(
        conn, domain_id, [h for found in hashes.values() for h in found]
    )
    if not hit:
        return groups
    kept = []
    for index, group in enumerate(groups):
        if hit.isdisjoint(hashes[index]):
            kept.append(group)
            continue
        result.unchanged -= group.count - 1
        result.rejected += group.count
        result.errors.append(
            RecordError(
                code="suppressed",
                message="this person is on the domain's suppression list",
                record=group.number,
            )
        )
    return kept


@dataclass
class _Plan:
    """What a page writes, decided from the owners of its keys (no further reads needed)."""

    new: list[tuple[uuid.UUID, _Group]] = field(default_factory=list)
    fills: list[tuple[uuid.UUID, dict[str, Any]]] = field(default_factory=list)
    attach: list[tuple[str, uuid.UUID]] = field(default_factory=list)
    provenance: list[tuple[uuid.UUID, _Group]] = field(default_factory=list)
    #: matched leads that gain a key
    gain_keys: set[uuid.UUID] = field(default_factory=set)
    matched: int = 0
    merge_candidates: int = 0


def _plan(
    groups: list[_Group],
    owners: dict[str, uuid.UUID],
    empty: dict[uuid.UUID, int],
    campaign_id: uuid.UUID | None,
) -> _Plan:
    """Steps 3-4 of the module docstring, in memory: match, appliers, keys, provenance."""
    plan = _Plan()
    applied: set[uuid.UUID] = set()
    campaign_bit = _CAMPAIGN_BIT if campaign_id is not None else 0
    for group in groups:
        # the highest-priority owned key decides the match (keys are in priority order)
        lead_id = next((owners[k] for k in group.keys if k in owners), None)
        if lead_id is None:
            lead_id = uuid.uuid4()
            plan.new.append((lead_id, group))
            plan.attach.extend((key, lead_id) for key in group.keys)
            continue
        plan.matched += 1
        for key in group.keys:
            owner = owners.get(key)
            if owner is None:
                plan.attach.append((key, lead_id))
                plan.gain_keys.add(lead_id)
            elif owner != lead_id:
                plan.merge_candidates += 1
        if lead_id in applied:
            continue  # a later record matching the same lead folds into the first
        applied.add(lead_id)
        plan.provenance.append((lead_id, group))
        values = _own_identity(group, owners, lead_id)
        lacks = empty[lead_id]
        if lacks & campaign_bit or any(values[c] is not None for c in _columns_of(lacks)):
            plan.fills.append((lead_id, values))
    return plan


@functools.cache
def _columns_of(mask: int) -> tuple[str, ...]:
    """The lead columns whose bit is set in an `_NULL_MASK` value."""
    return tuple(c for bit, c in enumerate(LEAD_COLUMNS) if mask & (1 << bit))


def _own_identity(
    group: _Group, owners: dict[str, uuid.UUID], lead_id: uuid.UUID
) -> dict[str, Any]:
    """The group's values without an email / LinkedIn URL whose key another lead owns."""
    values = group.values
    for column, prefix in _IDENTITY_KEY_PREFIX.items():
        value = values[column]
        if value is None:
            continue
        key = prefix + value
        owner = owners.get(key) if key in group.keys else None
        if owner is not None and owner != lead_id:
            values = {**values, column: None}
    return values


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None and len(value) > limit else value


#: `new_lead_score` per filled count (created now, its recency term is always the freshest)
_score = functools.cache(new_lead_score)


def _limited(values: dict[str, Any]) -> list[str | None]:
    return [_cut(values[c], n) for c, n in FIELD_LIMITS.items()]


def _new_leads(
    new: list[tuple[uuid.UUID, _Group]], domain_id: uuid.UUID, campaign_id: uuid.UUID | None
) -> dict[str, Any]:
    """`_INSERT_NEW`'s parameters: one array per column."""
    rows = [_limited(group.values) for _, group in new]
    params: dict[str, Any] = {
        "domain_id": domain_id,
        "campaign_id": campaign_id,
        "id": [lead_id for lead_id, _ in new],
        "score": [_score(sum(values[i] is not None for i in _SCORED)) for values in rows],
    }
    for i, column in enumerate(LEAD_COLUMNS):
        params[column] = [values[i] for values in rows]
    return params


def _provenance(pairs: list[tuple[uuid.UUID, _Group]]) -> dict[str, list[Any]]:
    """The per-row arrays of `_PROVENANCE_NEW` / `_PROVENANCE_MATCHED`."""
    return {
        "lead_ids": [lead_id for lead_id, _ in pairs],
        "external_ids": [group.external_id for _, group in pairs],
        "raws": [_json(group.raw) for _, group in pairs],
    }


#: what `json.dumps(raw, default=str)` builds on every call, built once (an API page of 2,000
#: records encodes 2,000 payloads)
_RAW_ENCODER = json.JSONEncoder(default=str)


def _json(raw: dict[str, Any] | None) -> str | None:
    return _RAW_ENCODER.encode(raw) if raw is not None else None


def _short_raw(record: LeadRecord) -> str:
    shown = {k: v for k, v in ((c, getattr(record, c)) for c in LEAD_COLUMNS) if v}
    return json.dumps(shown or (record.raw or {}), default=str)[:500]
