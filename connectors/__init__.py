"""Pluggable connectors: the contract (`connectors.base`), the providers, the shared HTTP layer.

Connectors fetch and normalise; they never touch the database or the queue (workers do).
"""
