-- Tollgate control plane, schema 1. Runs unchanged on SQLite and PostgreSQL: only TEXT and
-- BIGINT columns, ids assigned by the control plane (no SERIAL / AUTOINCREMENT), times in Unix
-- milliseconds.
CREATE TABLE revisions (
    id BIGINT PRIMARY KEY,
    config TEXT NOT NULL,
    author TEXT NOT NULL,
    message TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    rollback_of BIGINT
);
CREATE TABLE modules (
    sha256 TEXT PRIMARY KEY,
    data_b64 TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE consumers (
    name TEXT PRIMARY KEY,
    roles TEXT NOT NULL,
    plan TEXT,
    created_ms BIGINT NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    consumer TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    not_after_ms BIGINT,
    revoked_ms BIGINT
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE TABLE audit (
    id BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE gateways (
    node TEXT PRIMARY KEY,
    revision BIGINT,
    report TEXT NOT NULL,
    reported_ms BIGINT NOT NULL
);
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('keys_version', 0);
