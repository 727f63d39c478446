-- May a call go to this channel? KEYS[1] the channel's breaker hash; ARGV[1] how long a
-- half-open probe holds its slot (ms). Redis's clock, so every process agrees.
-- Returns {verdict, failures}: verdict 1 closed, 2 this caller is the half-open probe,
-- 0 open (skip the channel).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'failures', 'open_until', 'probe_until')
local failures = tonumber(state[1] or '0')
local open_until = tonumber(state[2] or '0')
if open_until == 0 then
  return {1, failures}
end
if now < open_until then
  return {0, failures}
end
-- Cool-down over: half-open. One probe at a time; its slot expires in case the prober dies.
if now < tonumber(state[3] or '0') then
  return {0, failures}
end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[1]))
return {2, failures}
