"""Config a connector renewed while a job ran (a refreshed OAuth token), stored on its source.

A connector never touches the database; it hands the changed fields to
`RunContext.save_config`, and this module merges them into the data source in one short
transaction with the row locked: the fields the connector's `Config` declares secret go into
the Fernet-encrypted `credentials` (decrypted, merged, encrypted again), the others into the
public `config` JSON. The values are never logged; only the names of the changed fields are.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import Engine

from connectors.base import split_secrets
from connectors.registry import get_connector_class
from models import row_security, sources_repo
from runtime.crypto import decrypt_json, encrypt_json
from runtime.logging import get_logger

_log = get_logger(__name__)


def save_source_config(
    engine: Engine,
    secret_key: str,
    domain_id: uuid.UUID,
    source_id: uuid.UUID,
    changes: Mapping[str, str | int | None],
) -> None:
    with row_security.domain_session(engine, domain_id) as session, session.begin():
        source = sources_repo.lock_source(session, source_id)
        model = get_connector_class(source.type).Config
        public, secrets = split_secrets(model, dict(changes))
        credentials = None
        if secrets:
            stored = decrypt_json(secret_key, source.credentials)
            credentials = encrypt_json(secret_key, {**stored, **secrets})
        sources_repo.update_source(
            session,
            source,
            config={**source.config, **public} if public else None,
            credentials=credentials,
        )
    _log.info("source.config_saved", data_source_id=str(source_id), fields=sorted(changes))
