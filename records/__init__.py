"""What a lead *is* before it is stored (ARCHITECTURE §2): `LeadRecord`, `RecordError`, the one
list of lead fields, and the normalisation and identity keys every producer and the sink share.

It sits below `connectors/` and `models/` so that both can speak of a lead without knowing each
other: the schema knows no provider, and a provider knows no table. It imports nothing of ours
but `runtime/`.
"""

from records.lead import FIELD_MAX_LEN, LEAD_FIELDS, TEXT_FIELDS, LeadField, LeadRecord, RecordError

__all__ = ["FIELD_MAX_LEN", "LEAD_FIELDS", "TEXT_FIELDS", "LeadField", "LeadRecord", "RecordError"]
