"""The API's routers, by module name: `create_app` mounts `api.routes.<name>.router` for each.

Listing names (not imported routers) keeps this package free of import-time work and cycles;
a listed module that is missing or has no `router` fails `create_app` loudly. Append new
resources here.
"""

ROUTERS: list[str] = [
    "auth",
    "me",
    "sessions",
    "api_keys",
    "domains",
    "clients",
    "campaigns",
    "connectors",
    "data_sources",
    "jobs",
    "logs",
    "schedules",
    "notifications",
    "events",
    "ws",
    "leads",
    "links",
    "analytics",
    "webhooks",
    "suppressions",
    "erasures",
    "data_policy",
    "credits",
    "audit",
]
