-- Tollgate control plane, schema 7: the per-route usage tables are keyed (route, time), which
-- serves one route's chart; the chart of every route reads a window of time over all routes,
-- which these indexes serve without reading every route's 48 hours or 400 days.
CREATE INDEX usage_route_minutes_by_time ON usage_route_minutes (minute_ms, route);
CREATE INDEX usage_route_days_by_time ON usage_route_days (day_ms, route);
