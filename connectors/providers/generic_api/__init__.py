"""`generic_api`: the connector (`connector`), the operator's config vocabulary (`config`) and the
small JSONPath subset it reads answers with (`jsonpath`)."""
