"""Operation ids a client generator can use: `jobs_start`, `leads_list`, `data_sources_create`.

FastAPI's default (`start_job_api_v1_jobs__job_id__start_post`) becomes a method name in every
generated client. Ours is the route's first tag and its function name without the resource
noun: `start_job` tagged `jobs` → `jobs_start`; `list_job_errors` → `jobs_list_errors`. Routes
therefore name their functions `<verb>_<resource>`; `tests/api/test_openapi.py` checks that
every id is unique.
"""

from __future__ import annotations

from fastapi.routing import APIRoute


def _without(tokens: list[str], noun: list[str]) -> list[str]:
    """`tokens` with the first run equal to `noun` removed."""
    width = len(noun)
    for start in range(len(tokens) - width + 1):
        if tokens[start : start + width] == noun:
            return tokens[:start] + tokens[start + width :]
    return tokens


def operation_id(route: APIRoute) -> str:
    """`<tag>_<verb>` for a tagged route, else the function name."""
    if not route.tags:
        return route.name
    tag = str(route.tags[0]).lower().replace(" ", "_").replace("-", "_")
    tokens = route.name.split("_")
    for noun in (tag, tag.removesuffix("s")):
        tokens = _without(tokens, noun.split("_"))
    verb = "_".join(tokens)
    return f"{tag}_{verb}" if verb else tag
