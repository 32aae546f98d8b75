"""`/data-policy`: the caller's domain's choices about personal data (issue 19).

`suppression_action` says what a new suppression does to existing leads it matches (`flag`:
tag them `suppressed`; `erase`: erase them). The `retain_*_days` settings say how long job log
lines, row errors, raw provider payloads, uploads and finished jobs are kept (`null`: forever);
the scheduler's purge and `dashin purge` apply them.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ManagerDep, ReaderDep, SessionDep
from api.problems import problem_responses
from api.schemas.privacy import DataPolicyIn, DataPolicyOut
from models import data_policy

router = APIRouter(prefix="/data-policy", tags=["data-policy"])


@router.get("", responses=problem_responses(401))
def get_data_policy(principal: ReaderDep, session: SessionDep) -> DataPolicyOut:
    """The domain's suppression action and retention periods."""
    return DataPolicyOut(**data_policy.get_policy(session, principal.domain_id))


@router.patch("", responses=problem_responses(403, 422))
def update_data_policy(
    body: DataPolicyIn, principal: ManagerDep, session: SessionDep
) -> DataPolicyOut:
    """Change the fields sent (`null` retention: keep forever)."""
    changes = body.model_dump(exclude_unset=True)
    if changes.get("suppression_action", "") is None:
        changes.pop("suppression_action")
    policy = data_policy.update_policy(session, principal.domain_id, changes)
    return DataPolicyOut(**policy)
