-- Tollgate control plane, schema 2: the developer portal. Developer accounts (each one owns
-- the consumer of the same name; passwords as Argon2id PHC strings) and sign-up invitations
-- (SHA-256 of the code). Same rules as schema 1: TEXT and BIGINT only, times in Unix ms.
CREATE TABLE developers (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE invites (
    code_hash TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    used_by TEXT
);
