-- Tollgate control plane, schema 3: usage analytics. Gateways report what they served per
-- (UTC minute, route, consumer); the control plane adds the reports of all gateways up here.
-- `latency` is a histogram as sparse text (`index:count,...`, buckets of crate::latency).
-- Same rules as schema 1: TEXT and BIGINT only, times in Unix ms (a minute's or UTC day's start).
-- Minutes and hours are kept 48 hours, days 400 days (pruned by the control plane).
CREATE TABLE usage_minutes (
    minute_ms BIGINT NOT NULL,
    route TEXT NOT NULL,
    consumer TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    client_errors BIGINT NOT NULL,
    latency TEXT NOT NULL,
    PRIMARY KEY (minute_ms, route, consumer)
);
CREATE INDEX usage_minutes_by_consumer ON usage_minutes (consumer, minute_ms);
CREATE INDEX usage_minutes_totals ON usage_minutes (minute_ms, consumer, requests, errors, client_errors);
CREATE TABLE usage_days (
    day_ms BIGINT NOT NULL,
    route TEXT NOT NULL,
    consumer TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    client_errors BIGINT NOT NULL,
    latency TEXT NOT NULL,
    PRIMARY KEY (day_ms, route, consumer)
);
CREATE INDEX usage_days_by_consumer ON usage_days (consumer, day_ms);
-- Each route's totals over all consumers, so a route's charts read one row per slot.
CREATE TABLE usage_route_minutes (
    minute_ms BIGINT NOT NULL,
    route TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    client_errors BIGINT NOT NULL,
    latency TEXT NOT NULL,
    PRIMARY KEY (route, minute_ms)
);
CREATE TABLE usage_route_days (
    day_ms BIGINT NOT NULL,
    route TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    client_errors BIGINT NOT NULL,
    latency TEXT NOT NULL,
    PRIMARY KEY (route, day_ms)
);
-- Each consumer's totals over all routes per hour and per day, for the totals per consumer over
-- a window (top consumers, quota use): a third of the rows with three routes, none of the text.
CREATE TABLE usage_consumer_hours (
    hour_ms BIGINT NOT NULL,
    consumer TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    client_errors BIGINT NOT NULL,
    PRIMARY KEY (hour_ms, consumer)
);
CREATE INDEX usage_consumer_hours_totals ON usage_consumer_hours (hour_ms, consumer, requests, errors, client_errors);
CREATE TABLE usage_consumer_days (
    day_ms BIGINT NOT NULL,
    consumer TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    client_errors BIGINT NOT NULL,
    PRIMARY KEY (day_ms, consumer)
);
CREATE INDEX usage_consumer_days_totals ON usage_consumer_days (day_ms, consumer, requests, errors, client_errors);
-- Each gateway's own totals per minute, for the fleet page's requests/s and error rate.
CREATE TABLE usage_nodes (
    minute_ms BIGINT NOT NULL,
    node TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    PRIMARY KEY (node, minute_ms)
);
