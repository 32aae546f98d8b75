"""Connector registry filled from the entry-point group `dashin.connectors`.

Built-ins register through the project's own entry points, so a third-party package adds a
connector exactly the way we do: `[project.entry-points."dashin.connectors"] myapi = "pkg:Cls"`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

from connectors.base import Connector
from connectors.errors import ConfigError
from runtime.logging import get_logger
from runtime.settings import get_settings

_log = get_logger(__name__)

GROUP = "dashin.connectors"


@lru_cache(maxsize=1)
def available() -> dict[str, type[Connector]]:
    """The installed connectors; test-only ones only where `DASHIN_TEST_CONNECTORS` is on."""
    with_test_only = get_settings().test_connectors
    found: dict[str, type[Connector]] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except ImportError as exc:
            # A broken plugin must not take the platform down; it is reported and left out.
            _log.warning("connector.unavailable", entry_point=ep.name, error=str(exc))
            continue
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a Connector subclass")
        if cls.type != ep.name:
            raise TypeError(f"entry point {ep.name} loads a connector whose type is {cls.type!r}")
        if cls.test_only and not with_test_only:
            continue
        found[ep.name] = cls
    return dict(sorted(found.items()))


def get_connector_class(type_: str) -> type[Connector]:
    try:
        return available()[type_]
    except KeyError:
        raise ConfigError(
            f"unknown connector type {type_!r}; installed: {', '.join(available()) or 'none'}"
        ) from None


def get_connector(type_: str) -> Connector:
    return get_connector_class(type_)()
