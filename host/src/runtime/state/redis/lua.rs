//! The Lua scripts of the Redis backend: each read-modify-write operation is one script, so it
//! is atomic on the Redis node that holds its key(s) (`EVALSHA`, loaded on `NOSCRIPT`).

/// `saturate(key, delta)`: the counter at `key` is an integer that INCRBY `delta` would take past
/// 64 bits: set it to the bound it would cross (keeping its TTL) and return that, as the memory
/// backend's `saturating_add` does. A macro, so `concat!` can splice it.
macro_rules! saturate_lua {
    () => {
        r"
local function saturate(key, delta)
  local bound = '9223372036854775807'
  if tonumber(delta) < 0 then bound = '-9223372036854775808' end
  redis.call('SET', key, bound, 'KEEPTTL')
  return bound
end
"
    };
}

/// `incr`: INCRBY, and the TTL only when this call created the counter; a counter that would
/// overflow saturates; a key that holds no integer is refused (`WRONGKIND`).
pub(super) const INCR_LUA: &str = concat!(
    saturate_lua!(),
    r"
local existed = redis.call('EXISTS', KEYS[1])
local ok, value = pcall(redis.call, 'INCRBY', KEYS[1], ARGV[1])
if not ok then
  local read, v = pcall(redis.call, 'GET', KEYS[1])
  if read and v and string.match(v, '^%-?[1-9]%d*$') then return saturate(KEYS[1], ARGV[1]) end
  return redis.error_reply('WRONGKIND counter')
end
if existed == 0 and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
"
);

/// The check loop shared by `incr_many` and `check_counters`: returns {i} for the first KEYS[i]
/// that is neither absent nor an integer as INCRBY reads it. A macro, so `concat!` can splice it.
macro_rules! check_counters_lua {
    () => {
        r"
for i, key in ipairs(KEYS) do
  local ok, v = pcall(redis.call, 'GET', key)
  if not ok or (v and v ~= '0' and (#v > 20 or not string.match(v, '^%-?[1-9]%d*$'))) then
    return {i}
  end
end
"
    };
}

/// `incr_many`: KEYS[i] gets delta ARGV[2i-1] and TTL ARGV[2i] (ms, 0 = none), in order. Returns
/// {0, new values in order}, or {i} when KEYS[i] holds something INCRBY refuses. Every key is
/// checked first (absent, or an integer as INCRBY reads it), so such a batch has no effect; after
/// the check an INCRBY can only fail on overflow, and that counter saturates, so a batch is
/// never left half applied.
pub(super) const INCR_MANY_LUA: &str = concat!(
    check_counters_lua!(),
    saturate_lua!(),
    r"
local out = {0}
for i, key in ipairs(KEYS) do
  local existed = redis.call('EXISTS', key)
  local ok, value = pcall(redis.call, 'INCRBY', key, ARGV[2 * i - 1])
  if not ok then value = saturate(key, ARGV[2 * i - 1]) end
  if existed == 0 and tonumber(ARGV[2 * i]) > 0 then redis.call('PEXPIRE', key, ARGV[2 * i]) end
  out[i + 1] = value
end
return out
"
);

/// `incr_many` in a cluster, before any slot's batch runs: the check alone, read-only. Returns {0}
/// when every KEYS[i] can take an INCRBY, else {i} as `incr_many` does.
pub(super) const CHECK_COUNTERS_LUA: &str = concat!(check_counters_lua!(), "return {0}\n");

/// `take`: the GCRA step of `gcra.rs`, on Redis's clock. ARGV: interval (ms per token), capacity,
/// cost, max wait (ms). Returns {granted, wait ms, remaining, ms until full}; the two times as
/// strings, since Redis would truncate Lua numbers to integers.
pub(super) const TAKE_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local eps = 1e-6
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2]) * interval
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  local v = tonumber(stored)
  if v == nil or string.find(stored, '.', 1, true) == nil then
    return redis.error_reply('WRONGKIND token bucket')
  end
  if v > now then tat = v end
end
local new_tat = tat + cost * interval
local wait = new_tat - burst - now
local granted = wait <= eps or wait <= max_wait + eps
local after = tat
if granted then after = new_tat end
local ahead = after - now
local remaining = math.floor((burst - ahead) / interval + eps)
if remaining < 0 then remaining = 0 end
if granted then
  local ttl = math.ceil(new_tat - now)
  if ttl > 0 then
    redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', ttl)
  else
    redis.call('DEL', KEYS[1])
  end
end
return {granted and 1 or 0, string.format('%.6f', wait), remaining, string.format('%.6f', ahead)}
";

/// `compare_and_set`: ARGV: expected, mode (`set` or `del`), new value, TTL ms (0 = none).
pub(super) const CAS_LUA: &str = r"
local ok, cur = pcall(redis.call, 'GET', KEYS[1])
if not ok or cur ~= ARGV[1] then return 0 end
if ARGV[2] == 'del' then
  redis.call('DEL', KEYS[1])
elseif tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
";

/// `expire`: ARGV: TTL ms (0 = remove the expiry). 1 when the key exists.
pub(super) const EXPIRE_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
else
  redis.call('PERSIST', KEYS[1])
end
return 1
";
