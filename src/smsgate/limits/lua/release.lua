-- Give back a reservation taken by acquire.lua (messages that were not accepted after all).
-- KEYS as in acquire.lua; ARGV[1]: the member "<id>:<cost>".
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  local cost = tonumber(string.match(ARGV[1], ':(%d+)$'))
  local used = tonumber(redis.call('GET', KEYS[2]) or '0') - cost
  if used < 0 then used = 0 end
  redis.call('SET', KEYS[2], used, 'KEEPTTL')
  return 1
end
return 0
