-- Moving-window acquire of `cost` units, atomic in Redis.
-- KEYS[1]: sorted set of reservations, member "<id>:<cost>", score = time in ms
-- KEYS[2]: running sum of the costs in KEYS[1]
-- ARGV[1]: window in ms, ARGV[2]: limit, ARGV[3]: cost, ARGV[4]: reservation id
-- Returns {1, 0} when taken, {0, retry_after_ms} when refused.
-- Redis server time is used so that every gateway node shares one clock.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local cutoff = now - window

local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
if #expired > 0 then
  for _, member in ipairs(expired) do
    used = used - tonumber(string.match(member, ':(%d+)$'))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  if used < 0 then used = 0 end
  redis.call('SET', KEYS[2], used, 'PX', window)
end

if used + cost > limit then
  local retry = window
  if cost <= limit then
    local need = used + cost - limit
    local freed = 0
    local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
    for i = 1, #entries, 2 do
      freed = freed + tonumber(string.match(entries[i], ':(%d+)$'))
      if freed >= need then
        retry = math.max(1, tonumber(entries[i + 1]) + window - now)
        break
      end
    end
  end
  return {0, retry}
end

redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. cost)
redis.call('PEXPIRE', KEYS[1], window)
redis.call('SET', KEYS[2], used + cost, 'PX', window)
return {1, 0}
