-- Start one verification attempt: counts it before the caller compares, so parallel
-- guesses can never together make more than ARGV[1] tries.
-- Returns {0} no code, {1} expired, {2} no tries left, {3, hash, salt, tries made}.
local v = redis.call('HMGET', KEYS[1], 'h', 's', 'exp', 'n')
if not v[1] then return {0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(v[3]) then return {1} end
local tries = tonumber(v[4])
if tries >= tonumber(ARGV[1]) then return {2} end
redis.call('HINCRBY', KEYS[1], 'n', 1)
return {3, v[1], v[2], tries + 1}
