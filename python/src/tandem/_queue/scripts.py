"""Lua run inside Redis, where two steps must happen as one."""

from __future__ import annotations

# Moves due retries from the delayed set back onto the stream, atomically per entry.
# KEYS[1] delayed zset, KEYS[2] stream; ARGV[1] now (unix ms), ARGV[2] max entries.
# Members are msgpack arrays [field, value, field, value, ...] (binary-safe).
MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local fields = cmsgpack.unpack(member)
  redis.call('XADD', KEYS[2], '*', unpack(fields))
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""

# Extends the lease of entries this consumer still owns: XCLAIM ... 0 JUSTID resets their idle
# time without counting a delivery. An entry already taken over by someone else is left alone.
# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3..] entry ids.
EXTEND_LEASE = """
local kept = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept = kept + 1
  end
end
return kept
"""
