"""Bottom layer: settings, logging, the error root, engine and broker factories, embedded services.

Nothing here imports another dashin package, and nothing is built at import time.
"""
