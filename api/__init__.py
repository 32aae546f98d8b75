"""The control API: a FastAPI app built by `api.app.create_app()`.

Nothing is built at import time; the engine, Redis client and settings are resolved on first use,
so importing `api` (for OpenAPI generation, tests, the CLI) never touches a service.
"""
