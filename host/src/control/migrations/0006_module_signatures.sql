-- Tollgate control plane, schema 6: detached module signatures (docs/rollout.md), one per module
-- and signing key: the `.sig` files `tollgate plugin sign` wrote, as uploaded by `tollgate ctl
-- apply`. Gateways (and the validator) take the one by a key their config trusts.
CREATE TABLE module_signatures (
    sha256 TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (sha256, key_id)
);
