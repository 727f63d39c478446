-- Give back what phones_acquire.lua took for one request (refused after all).
-- KEYS: the phones' sorted sets; ARGV[1]: the request token.
for _, key in ipairs(KEYS) do
  redis.call('ZREM', key, ARGV[1])
end
return 0
