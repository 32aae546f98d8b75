"""One module or package per provider; each is reached through the registry's entry points.

A provider imports the contract (`connectors.base`, `connectors.errors`) and the shared
machinery (`connectors.kit`), never another provider, so one can be removed without the others
noticing (an import-linter contract in pyproject.toml holds this).
"""
