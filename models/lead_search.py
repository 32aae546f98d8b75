"""The lead search index, kept off the page transaction (issue 16; migrations 0018, 0022).

`ix_leads_search_trgm` (trigram GIN over the searched columns) was the dearest thing a lead
cost to write: merging ~100 trigram entries per row into the tree inside the page halved the
COPY rate into `leads`. The index now keeps a large pending list (`fastupdate`, 64 MB): a page
only appends its entries to that list, which every search scans as it is, so a lead is
findable the moment its page commits. Merging the list into the tree (the expensive part,
done in sorted batches) is `merge_pending`, run after commits by `workers.search_merge`, so
the list, and the search time it adds, stays small. If no merger runs, the list still merges
when it reaches its ceiling (inside some page, as before) or at the next (auto)vacuum.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

_MERGE = text("SELECT leads_search_merge()")


def merge_pending(conn: Connection) -> int:
    """Merge the pending list into the index tree; the pending pages merged (0: none waited).
    `leads_search_merge()` is SECURITY DEFINER: merging needs the index owner's rights."""
    return int(conn.execute(_MERGE).scalar_one())
