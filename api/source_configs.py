"""Turning a client's config into what is stored, and back into a connector's `Config`.

A config is validated whole (public part and secrets together) by the connector's `Config` model,
then split: the public part is stored as JSON in `data_sources.config`, the secrets as one Fernet
token in `data_sources.credentials`. Only the names of stored secrets ever leave this module
towards a client. PATCH is a merge: given keys replace, `null` removes a key (clearing a secret),
absent keys are kept — so editing a source's name or URL never needs its API key again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.schemas.data_sources import validate_model
from connectors.base import Connector, ConnectorConfig, reveal, secret_field_names
from connectors.errors import ConfigError
from connectors.registry import get_connector_class
from models.sources import DataSource
from runtime.crypto import decrypt_json, encrypt_json
from runtime.errors import FieldError, ValidationFailed
from runtime.settings import get_settings


@dataclass(frozen=True, slots=True)
class StoredConfig:
    """What goes into the row: the public JSON and the encrypted secrets (None if none)."""

    public: dict[str, Any]
    secrets: dict[str, Any]

    @property
    def credentials(self) -> bytes | None:
        return encrypt_json(_secret_key(), self.secrets) if self.secrets else None


def _secret_key() -> str:
    return get_settings().require_secret_key()


def connector_class(type_: str, field: str = "type") -> type[Connector]:
    """The connector for `type_`, or a 422 naming `field` when none is installed."""
    try:
        return get_connector_class(type_)
    except ConfigError as exc:
        raise ValidationFailed(
            "unknown connector type", [FieldError(field, "unknown_connector", exc.message)]
        ) from None


def validate_config(
    cls: type[Connector], public: dict[str, Any], secrets: dict[str, Any]
) -> StoredConfig:
    """Validate the whole config; store the normalised public part and the given secrets."""
    model: ConnectorConfig = validate_model(cls.Config, {**public, **secrets}, "config")
    names = secret_field_names(cls.Config)
    dumped = model.model_dump(mode="json", exclude_unset=True)
    stored_public = {k: v for k, v in dumped.items() if k not in names}
    stored_secrets = {
        name: reveal(getattr(model, name))
        for name in names
        if name in model.model_fields_set and getattr(model, name) is not None
    }
    return StoredConfig(stored_public, stored_secrets)


def split_input(
    cls: type[Connector], data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    names = secret_field_names(cls.Config)
    public = {k: v for k, v in data.items() if k not in names}
    secrets = {k: v for k, v in data.items() if k in names}
    return public, secrets


def for_create(type_: str, config: dict[str, Any]) -> StoredConfig:
    cls = connector_class(type_)
    return validate_config(cls, *split_input(cls, config))


def stored_secrets(source: DataSource) -> dict[str, Any]:
    return decrypt_json(_secret_key(), source.credentials)


def secrets_set(source: DataSource) -> list[str]:
    """Names of the secrets stored for a source; the values never leave the server."""
    return sorted(stored_secrets(source))


def for_patch(source: DataSource, patch: dict[str, Any]) -> StoredConfig:
    """Merge `patch` into the stored config (see module docstring) and validate the result."""
    cls = connector_class(source.type)
    names = secret_field_names(cls.Config)
    public = dict(source.config)
    secrets = stored_secrets(source)
    for key, value in patch.items():
        target = secrets if key in names else public
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return validate_config(cls, public, secrets)


def connector_config(
    source: DataSource,
    overrides: dict[str, Any] | None = None,
    *,
    context: dict[str, Any] | None = None,
) -> ConnectorConfig:
    """The source's full `Config` (secrets decrypted) for `check`; never serialised."""
    cls = connector_class(source.type)
    data = {**source.config, **stored_secrets(source), **(overrides or {})}
    config: ConnectorConfig = validate_model(cls.Config, data, "config", context=context)
    return config
