"""Request and response bodies (pydantic), kept apart from the ORM models they are built from."""
