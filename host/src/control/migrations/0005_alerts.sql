-- Tollgate control plane, schema 5: spike alerts (docs/control-plane.md, "Spike alerts").
-- Alerts as detected (a route, or a route's consumer when `consumer` is not empty; numbers as
-- decimal text), the webhooks they are sent to (the secret signs the body, so it is kept as
-- given) and one delivery per (alert, webhook) with its retry state. TEXT and BIGINT only.
CREATE TABLE alerts (
    id BIGINT PRIMARY KEY,
    route TEXT NOT NULL,
    consumer TEXT NOT NULL,
    metric TEXT NOT NULL,
    value TEXT NOT NULL,
    baseline TEXT NOT NULL,
    z TEXT NOT NULL,
    minute_ms BIGINT NOT NULL,
    detected_ms BIGINT NOT NULL
);
CREATE TABLE alert_webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE alert_deliveries (
    alert_id BIGINT NOT NULL,
    webhook_id TEXT NOT NULL,
    url TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_ms BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (alert_id, webhook_id)
);
