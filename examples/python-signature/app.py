"""Tollgate plugin: HMAC-SHA256 request signatures, written in Python.

The client signs four lines joined by "\n":

    METHOD            upper case, e.g. POST
    PATH              the path the gateway routes on (normalised, without the query)
    TIMESTAMP         the value of the timestamp header: Unix seconds
    BODY-SHA256       lower-case hex SHA-256 of the request body (of b"" when there is none)

and sends `hex(HMAC-SHA256(secret, that text))` in the signature header (optionally prefixed
with `sha256=`). A missing or wrong signature, or a timestamp further than `max_skew_seconds`
from the gateway's clock, is answered 401 with a JSON body; the upstream never sees it.

Built into a WebAssembly component with componentize-py (see build.sh); the contract is the
repository's wit/v0.1/plugin.wit (contract 0.1.0), world `plugin`, exactly as for the Rust plugins.
"""

import hashlib
import warnings  # noqa: F401  (hmac imports it lazily; componentize-py bundles only what is imported)
import hmac
import json

from componentize_py_types import Err
import wit_world
from wit_world.imports import clock, context, log, types

DEFAULTS = {
    "signature_header": "x-signature",
    "timestamp_header": "x-timestamp",
    "max_skew_seconds": 300,
    "context_key": "signature_key",
}


class Settings:
    def __init__(self, raw: dict):
        unknown = sorted(set(raw) - set(DEFAULTS) - {"secret", "key_id"})
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        secret = raw.get("secret")
        if not isinstance(secret, str) or len(secret) < 16:
            raise ValueError("`secret` is required: a string of at least 16 characters")
        self.secret = secret.encode()
        self.key_id = raw.get("key_id", "default")
        if not isinstance(self.key_id, str):
            raise ValueError("`key_id` must be a string")
        merged = {**DEFAULTS, **raw}
        for name in ("signature_header", "timestamp_header", "context_key"):
            if not isinstance(merged[name], str) or not merged[name]:
                raise ValueError(f"`{name}` must be a non-empty string")
        self.signature_header = merged["signature_header"]
        self.timestamp_header = merged["timestamp_header"]
        self.context_key = merged["context_key"]
        skew = merged["max_skew_seconds"]
        if isinstance(skew, bool) or not isinstance(skew, int) or not 1 <= skew <= 86400:
            raise ValueError("`max_skew_seconds` must be an integer in 1..=86400")
        self.max_skew = skew


def string_to_sign(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    return "\n".join([method, path, timestamp, hashlib.sha256(body).hexdigest()]).encode()


def unauthorized(reason: str, message: str) -> types.Action:
    body = json.dumps({"error": "invalid_signature", "reason": reason, "message": message})
    return types.Action_Respond(
        types.Reply(
            status=401,
            headers=[("content-type", "application/json")],
            body=body.encode(),
        )
    )


# One instance serves one call at a time; the settings are per instance, set by init.
settings = None


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> types.Capabilities:
        global settings
        try:
            raw = json.loads(config or "{}")
            if not isinstance(raw, dict):
                raise ValueError("the config must be a table")
            settings = Settings(raw)
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            raise Err(str(e))
        return types.Capabilities(
            phases=types.Phases.REQUEST, request_body=True, response_body=False
        )

    def on_request(self, req: types.Request) -> types.Action:
        s = settings
        signature = req.header(s.signature_header)
        timestamp = req.header(s.timestamp_header)
        if not signature or not timestamp:
            return unauthorized(
                "missing",
                f"the request must carry {s.signature_header} and {s.timestamp_header}",
            )
        try:
            sent = int(timestamp)
        except ValueError:
            return unauthorized("bad_timestamp", f"{s.timestamp_header} must be Unix seconds")
        now = clock.now_millis() // 1000
        if abs(now - sent) > s.max_skew:
            return unauthorized(
                "stale",
                f"{s.timestamp_header} is more than {s.max_skew} s away from the gateway's clock",
            )
        try:
            body = req.body()
        except Err as e:
            log.write(log.Level.ERROR, f"request body unavailable: {e.value}")
            return unauthorized("no_body", "the request body could not be read")
        expected = hmac.new(
            s.secret, string_to_sign(req.method(), req.path(), timestamp, body), hashlib.sha256
        ).hexdigest()
        given = signature.strip()
        if given.startswith("sha256="):
            given = given[len("sha256="):]
        if not hmac.compare_digest(expected, given.lower()):
            log.write(log.Level.INFO, "signature mismatch")
            return unauthorized("mismatch", "the signature does not match the request")
        context.set(s.context_key, s.key_id)
        return types.Action_Continue()

    def on_response(self, req: types.Request, resp: types.Response) -> types.Action:
        return types.Action_Continue()

    def on_log(self, entry: types.LogEntry) -> None:
        pass
