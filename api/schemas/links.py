"""Bodies of UTM links and their click analytics."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas import examples as ex
from api.schemas.common import FROM_ORM, ShortText, example

UtmValue = Field(min_length=1, max_length=200)
MAX_BULK_LINKS = 500


class UtmFields(BaseModel):
    model_config = example(
        {"utm_source": "linkedin", "utm_medium": "social", "utm_content": "carousel-a"}
    )

    utm_source: str = UtmValue
    utm_medium: str = UtmValue
    utm_campaign: str | None = Field(None, min_length=1, max_length=200)
    utm_content: str | None = Field(None, max_length=200)
    utm_term: str | None = Field(None, max_length=200)


class LinkCreate(UtmFields):
    """`utm_campaign` defaults to the campaign's slug."""

    model_config = example(
        {
            "utm_source": "linkedin",
            "utm_medium": "social",
            "utm_campaign": "q3-cfo",
            "destination_url": "https://acme.com/demo",
        }
    )

    destination_url: str = Field(min_length=1, max_length=4000)


class LinkBulkCreate(BaseModel):
    """Many variants of one destination: explicit `variants`, or every source by medium
    (by content, when given) combination."""

    model_config = example(
        {
            "destination_url": "https://acme.com/demo",
            "utm_campaign": "q3-cfo",
            "sources": ["linkedin", "newsletter"],
            "mediums": ["social", "email"],
        }
    )

    destination_url: str = Field(min_length=1, max_length=4000)
    utm_campaign: str | None = Field(None, min_length=1, max_length=200)
    variants: list[UtmFields] | None = Field(None, min_length=1, max_length=MAX_BULK_LINKS)
    sources: list[ShortText] | None = Field(None, min_length=1, max_length=50)
    mediums: list[ShortText] | None = Field(None, min_length=1, max_length=50)
    contents: list[ShortText] | None = Field(None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _shape(self) -> LinkBulkCreate:
        if self.variants is None and not (self.sources and self.mediums):
            raise ValueError("give `variants`, or `sources` and `mediums`")
        if len(self.expand()) > MAX_BULK_LINKS:
            raise ValueError(f"at most {MAX_BULK_LINKS} links at once")
        return self

    def expand(self) -> list[UtmFields]:
        if self.variants is not None:
            return self.variants
        contents: list[str | None] = [*self.contents] if self.contents else [None]
        return [
            UtmFields(utm_source=s, utm_medium=m, utm_content=c, utm_campaign=self.utm_campaign)
            for s, m, c in itertools.product(self.sources or [], self.mediums or [], contents)
        ]


class LinkUpdate(BaseModel):
    """Only the fields sent change; `full_url` is rebuilt and the short code stays."""

    model_config = example({"destination_url": "https://acme.com/demo-2027"})

    destination_url: str | None = Field(None, min_length=1, max_length=4000)
    utm_source: str | None = Field(None, min_length=1, max_length=200)
    utm_medium: str | None = Field(None, min_length=1, max_length=200)
    utm_campaign: str | None = Field(None, min_length=1, max_length=200)
    utm_content: str | None = Field(None, max_length=200)
    utm_term: str | None = Field(None, max_length=200)


class LinkBulkIn(BaseModel):
    """One change (or deletion) applied to many links in one transaction, with a result per id."""

    model_config = example(
        {
            "action": "update",
            "ids": [ex.LINK_ID],
            "update": {"destination_url": "https://acme.com/demo-2027"},
        }
    )
    action: Literal["update", "delete"]
    ids: list[uuid.UUID] = Field(min_length=1, max_length=1000)
    update: LinkUpdate | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LinkBulkIn:
        if self.action == "update" and not (self.update and self.update.model_fields_set):
            raise ValueError("action update needs `update` with at least one field")
        if self.action == "delete" and self.update is not None:
            raise ValueError("action delete takes no `update`")
        return self


class LinkOut(BaseModel):
    model_config = ConfigDict(
        **FROM_ORM,
        **example(
            {
                "id": ex.LINK_ID,
                "domain_id": ex.DOMAIN_ID,
                "campaign_id": ex.CAMPAIGN_ID,
                "destination_url": "https://acme.com/demo",
                "utm_source": "linkedin",
                "utm_medium": "social",
                "utm_campaign": "q3-cfo-outreach",
                "utm_content": None,
                "utm_term": None,
                "full_url": "https://acme.com/demo?utm_source=linkedin&utm_medium=social"
                "&utm_campaign=q3-cfo-outreach",
                "short_code": "k7Qm2ZpX",
                "short_path": "/r/k7Qm2ZpX",
                "clicks": 318,
                "created_by": ex.USER_ID,
                "created_at": ex.CREATED_AT,
                "updated_at": ex.CREATED_AT,
            }
        ),
    )

    id: uuid.UUID
    domain_id: uuid.UUID
    campaign_id: uuid.UUID
    destination_url: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_content: str | None
    utm_term: str | None
    full_url: str
    short_code: str
    short_path: str = ""
    clicks: int
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="after")
    def _short_path(self) -> LinkOut:
        self.short_path = f"/r/{self.short_code}"
        return self
