"""The JSON API (django-ninja + pydantic): `views` (the endpoints), `schemas` (what they accept and answer, which the
OpenAPI document is generated from), `envelope` (answers and error codes), `auth` (bearer tokens, rate limit, role),
`body` (JSON bodies) and `reference` (the document and the page rendered from it)."""
