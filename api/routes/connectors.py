"""`GET /connectors`: the installed connector types and the JSON Schemas of their inputs.

Clients build their data-source and job forms from these schemas; secret fields carry
`format: password` and `writeOnly: true` (pydantic's rendering of `SecretStr`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import ReaderDep
from api.schemas.data_sources import ConnectorList, ConnectorOut
from connectors import registry

router = APIRouter(prefix="/connectors", tags=["connectors"])


def _schema(model: object) -> dict[str, Any]:
    # `Connector.type` shadows the builtin inside the class body, so mypy cannot see that
    # `Config`/`Params` are model classes; assert it here instead.
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model.model_json_schema()


@router.get("")
def list_connectors(principal: ReaderDep) -> ConnectorList:
    """Installed connector types with the JSON Schemas of their `config` and job `params`."""
    del principal  # any signed-in member may see what can be configured
    return ConnectorList(
        items=[
            ConnectorOut(
                type=type_,
                config_schema=_schema(cls.Config),
                params_schema=_schema(cls.Params),
            )
            for type_, cls in registry.available().items()
        ]
    )
