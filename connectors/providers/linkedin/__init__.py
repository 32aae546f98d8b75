"""LinkedIn Lead Gen Forms: the connector (`connector`), OAuth token refresh (`auth`), the form
cache (`forms`: which question each answer answers) and answers to leads (`mapping`)."""
