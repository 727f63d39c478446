-- Use up the code whose hash the caller matched: only the first caller gets 1.
-- ARGV[1] is the stored hash returned by code_attempt.lua, never the caller's input.
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
