-- The outcome of one call to a channel. KEYS[1] the breaker hash; ARGV[1] 1 failed / 0 not,
-- ARGV[2] failures that open the breaker, ARGV[3] cool-down (ms), ARGV[4] key lifetime (ms).
-- Returns 1 when the breaker is (now) open.
if ARGV[1] == '0' then
  redis.call('DEL', KEYS[1])
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local was_open = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0') > 0
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
-- A failed half-open probe opens it again at once, whatever the count.
if was_open or failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[3]), 'probe_until', 0)
  return 1
end
return 0
