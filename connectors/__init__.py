"""Pluggable connectors: the contract (`connectors.base`, `connectors.errors`), the registry,
the providers (`connectors.providers`) and their shared machinery (`connectors.kit`).

Connectors fetch and normalise; they never touch the database or the queue (workers do).
"""
