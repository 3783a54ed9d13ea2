-- Tollgate control plane, schema 4: OpenAPI documents, one per API version (a route of the
-- config, by name), uploaded with PUT /v1/apis/{name}/openapi and rendered in the developer
-- portal. The document is kept as the JSON text it was validated as. Same rules as schema 1:
-- TEXT and BIGINT only, times in Unix ms. (Schema 3 is the usage tables; each schema runs on
-- its own, so a database may get 4 before 3.)
CREATE TABLE api_docs (
    route TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    size BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
