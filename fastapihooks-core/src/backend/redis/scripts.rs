//! The Lua scripts that make each queue step atomic on the Redis server.
//!
//! Times come from the server's `TIME`, so sidecars with skewed clocks agree on when a retry is
//! due.

use std::sync::LazyLock;

use redis::Script;

/// Settles a batch of leases, each only if this consumer still holds it: one call for all the
/// settles that ended together (atomic as a whole, fenced one by one).
///
/// KEYS: tasks, deliveries, retries, dead. ARGV: group, consumer, then per lease: its stream
/// (`1` tasks, `2` deliveries), entry id, mode, how many mode arguments follow, the mode
/// arguments:
/// - `replace`, task JSON…: XADD each task (a fan-out's delivery tasks) to `deliveries`;
/// - `retry`, delay ms, task JSON: ZADD to `retries` at now + delay;
/// - `dead`, task JSON, reason, max len: XADD to `dead` (trimmed);
/// - `each`, max len, then triples — `now`, task JSON, (empty): as `replace`; `in`, task
///   JSON, delay ms: as `retry`; `dead`, task JSON, reason: as `dead`.
///
/// Then XACK + XDEL the entry. Returns one integer per lease: 1, or 0 when the entry is no
/// longer pending for this consumer (its lease expired and another consumer claimed it): then
/// nothing is changed for it.
pub(super) static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local group, consumer = ARGV[1], ARGV[2]
local now = nil
local settled = {}
local i = 3
while i <= #ARGV do
  local stream, entry, mode = KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2]
  local first = i + 4
  i = first + tonumber(ARGV[i + 3])
  local owned = redis.call('XPENDING', stream, group, entry, entry, 1, consumer)
  if #owned == 0 then
    settled[#settled + 1] = 0
  else
    if mode == 'replace' then
      for j = first, i - 1 do
        redis.call('XADD', KEYS[2], '*', 'task', ARGV[j])
      end
    elseif mode == 'retry' then
      if now == nil then
        local t = redis.call('TIME')
        now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      end
      redis.call('ZADD', KEYS[3], now + tonumber(ARGV[first]), ARGV[first + 1])
    elseif mode == 'dead' then
      redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[first + 2], '*', 'task', ARGV[first], 'reason', ARGV[first + 1])
    elseif mode == 'each' then
      for j = first + 1, i - 1, 3 do
        local kind, task = ARGV[j], ARGV[j + 1]
        if kind == 'now' then
          redis.call('XADD', KEYS[2], '*', 'task', task)
        elseif kind == 'in' then
          if now == nil then
            local t = redis.call('TIME')
            now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
          end
          redis.call('ZADD', KEYS[3], now + tonumber(ARGV[j + 2]), task)
        elseif kind == 'dead' then
          redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[first], '*', 'task', task, 'reason', ARGV[j + 2])
        else
          return redis.error_reply('ERR unknown replacement ' .. kind)
        end
      end
    else
      return redis.error_reply('ERR unknown settle mode ' .. mode)
    end
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
    settled[#settled + 1] = 1
  end
end
return settled
"#,
    )
});

/// Queues a replayed run of a delivery once: remembers `delivery:run` in the replays set and
/// adds the task only if it was not there. Entries older than the retention are dropped first,
/// so the set stays bounded.
///
/// KEYS: deliveries, replays. ARGV: `delivery:run`, task JSON, retention ms. Returns 1 when queued,
/// 0 when that run was queued before.
pub(super) static QUEUE_ONCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
if redis.call('ZADD', KEYS[2], 'NX', now, ARGV[1]) == 0 then
  return 0
end
redis.call('XADD', KEYS[1], '*', 'task', ARGV[2])
return 1
"#,
    )
});

/// Renews a lease: resets the entry's idle time by claiming it again for the same consumer,
/// only if this consumer still holds it (`JUSTID`: the delivery count is not raised).
///
/// KEYS: the entry's stream. ARGV: group, consumer, entry id. Returns 1, or 0 when the lease is
/// gone.
pub(super) static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #owned == 0 then
  return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"#,
    )
});

/// Moves due retries back into their stream: delivery tasks (their JSON starts with
/// `{"type":"deliver"`, the tag first) into `deliveries`, fan-outs into `tasks`.
///
/// KEYS: tasks, retries, deliveries. ARGV: at most how many to move. Returns `{moved, ms until the next
/// retry is due or -1 when none waits}`.
pub(super) static PROMOTE_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, task in ipairs(due) do
  local stream = KEYS[1]
  if string.sub(task, 1, 17) == '{"type":"deliver"' then
    stream = KEYS[3]
  end
  redis.call('XADD', stream, '*', 'task', task)
  redis.call('ZREM', KEYS[2], task)
end
local next_due = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local wait = -1
if #next_due == 2 then
  wait = math.max(0, tonumber(next_due[2]) - now)
end
return {#due, wait}
"#,
    )
});

/// Forgets consumers that hold no lease and have not been seen for a while (sidecars that
/// stopped or crashed and were taken over), so the group does not grow with every restart.
/// Atomic, so a consumer cannot lease between the check and the deletion.
///
/// KEYS: tasks. ARGV: group, idle ms. Returns how many were deleted.
pub(super) static PRUNE_CONSUMERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if consumers['err'] then
  return 0
end
local deleted = 0
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do
    info[c[i]] = c[i + 1]
  end
  if info['pending'] == 0 and info['idle'] > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    deleted = deleted + 1
  end
end
return deleted
"#,
    )
});

/// How long the oldest task ready to run has waited, in ms on the server's clock: the oldest
/// entry of either stream not yet delivered to the group (after its `last-delivered-id`; every
/// entry when the group does not exist yet — an entry id starts with the ms it was added at),
/// and the oldest retry already due but not yet moved back into its stream (its score is when
/// it became due). Leased entries and retries not yet due are not waiting.
///
/// KEYS: tasks, deliveries, retries. ARGV: group. Returns the age in ms, or -1 when no task is
/// ready.
pub(super) static OLDEST_PENDING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local oldest = nil
for i = 1, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local start = '-'
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[i])) do
      local info = {}
      for j = 1, #g, 2 do
        info[g[j]] = g[j + 1]
      end
      if info['name'] == ARGV[1] then
        start = '(' .. info['last-delivered-id']
      end
    end
    local first = redis.call('XRANGE', KEYS[i], start, '+', 'COUNT', 1)
    if #first > 0 then
      local ms = tonumber(string.match(first[1][1], '^(%d+)'))
      if oldest == nil or ms < oldest then
        oldest = ms
      end
    end
  end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
if #due == 2 then
  local at = tonumber(due[2])
  if oldest == nil or at < oldest then
    oldest = at
  end
end
if oldest == nil then
  return -1
end
return math.max(0, now - oldest)
"#,
    )
});
