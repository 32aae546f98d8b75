"""Values the documented examples share, so that the examples agree with one another.

An example is what `/docs` shows and what a generated client's reader learns the API from: the
job's `data_source_id` is the source's `id`, the lead's `domain_id` the domain's, and every
timestamp falls in one believable November 2026. Everything here is fake on sight: `acme.com`
and `*.example` addresses as in docs/api.md, and no secret that could be mistaken for one.
"""

from __future__ import annotations

DOMAIN_ID = "0b9f6a2e-3c41-4d8e-9f27-5a6b7c8d9e01"
DOMAIN_NAME = "acme.com"
USER_ID = "2c7e1f4a-9b3d-4e6f-8a1c-3d5e7f9a1b23"
USER_EMAIL = "ada@acme.com"
MEMBER_ID = "4e8a2b6c-1d3f-4a5b-9c7d-2e4f6a8b0c45"
API_KEY_ID = "1a3c5e7f-2b4d-4c6e-8f0a-1b3c5d7e9f02"
SOURCE_ID = "5f0c1d2e-8a7b-4c3d-9e8f-1a2b3c4d5e6f"
UPLOAD_ID = "3d5f7a9b-4c6e-4d8f-a0b1-2c3d4e5f6a78"
CLIENT_ID = "6f1c1f9e-1b7e-4c1a-9d3c-0d6c2f7e9a10"
CAMPAIGN_ID = "7a2d4e6f-8b1c-4d3e-9f5a-6b7c8d9e0f12"
JOB_ID = "8c3e5f7a-9b2d-4e4f-a06b-7c8d9e0f1a23"
SCHEDULE_ID = "c1e3a5b7-6d8f-4a0b-9c2d-4e6f8a0b2c56"
LEAD_ID = "9d4f6a8b-0c3e-4f5a-b17c-8d9e0f1a2b34"
OTHER_LEAD_ID = "ad5e7b9c-1d4f-4a6b-8c8d-9e0f1a2b3c45"
LINK_ID = "be6f8c0d-2e5a-4b7c-9d9e-0f1a2b3c4d56"
WEBHOOK_ID = "d2f4b6c8-7e9a-4b1c-8d3e-5f7a9b1c3d67"

#: when the domain, its user and its source were made; the job ran on the 2nd
CREATED_AT = "2026-11-02T09:14:07Z"
UPDATED_AT = "2026-11-20T16:45:31Z"
JOB_STARTED_AT = "2026-11-02T09:14:09Z"
JOB_FINISHED_AT = "2026-11-02T09:16:41Z"
