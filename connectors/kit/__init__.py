"""What providers share: HTTP with retries and the SSRF guard, shared rate limits, partitioning
and paid enrichment, CSV reading, and an in-process `RunContext` for tests and checks.

The kit knows no provider (an import-linter contract in pyproject.toml holds this): a provider
is what uses it.
"""
