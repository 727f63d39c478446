-- Per-phone moving windows for every phone of one request, atomic in Redis.
-- KEYS[i]: sorted set of one phone's messages, member = request token, score = time in ms
-- ARGV[1]: number of windows n; ARGV[2..2n+1]: window_ms, limit pairs; ARGV[2n+2]: token
-- Returns, per phone, {hit, retry_after_ms}: hit 0 when taken, else the index (1-based) of
-- the first window over its limit, retry = when every exceeded window has room again.
-- A phone is taken only when all its windows allow it; other phones are independent.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local token = ARGV[2 * n + 2]
local longest = 0
for w = 1, n do
  local ms = tonumber(ARGV[2 * w])
  if ms > longest then longest = ms end
end
local out = {}
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - longest)
  local hit = 0
  local retry = 0
  for w = 1, n do
    local ms = tonumber(ARGV[2 * w])
    local limit = tonumber(ARGV[2 * w + 1])
    local cutoff = '(' .. (now - ms)
    local used = redis.call('ZCOUNT', key, cutoff, '+inf')
    if used >= limit then
      if hit == 0 then hit = w end
      local wait = 1
      if limit > 0 then
        local entry = redis.call('ZRANGEBYSCORE', key, cutoff, '+inf', 'WITHSCORES', 'LIMIT',
          used - limit, 1)
        wait = math.max(1, tonumber(entry[2]) + ms - now)
      else
        wait = ms
      end
      if wait > retry then retry = wait end
    end
  end
  if hit == 0 then
    redis.call('ZADD', key, now, token)
    redis.call('PEXPIRE', key, longest)
  end
  out[#out + 1] = hit
  out[#out + 1] = retry
end
return out
