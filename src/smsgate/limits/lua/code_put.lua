-- Store a new verification code for one business + phone, replacing any earlier one.
-- KEYS[1]: the code's hash; ARGV[1]: code hash, ARGV[2]: salt, ARGV[3]: TTL in ms,
-- ARGV[4]: how long after expiry the record is kept (to answer "expired", not "invalid").
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 's', ARGV[2], 'exp', now + ttl, 'n', 0)
redis.call('PEXPIRE', KEYS[1], ttl + tonumber(ARGV[4]))
return 1
