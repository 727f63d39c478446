-- wrk script (queued.py): POST /api/v1/messages with $BENCH_PHONES distinct phones per request.
-- Phones are valid CN mobiles (+86138xxxxxxxx); each request takes the next block of numbers
-- of its thread, so requests differ and a request never repeats a phone (the API refuses
-- duplicates within one request with 400). $BENCH_BUSINESS picks the business,
-- $BENCH_APP_KEY authenticates, $BENCH_MAX_REQUESTS (per thread, 0 = no cap) stops a thread
-- after that many answers. Reports like post.lua: "status <code>: <count>" per HTTP status
-- and "sample <code>: <first body>" for every status of 300 or more, plus "elapsed <s>" from
-- the first request to the last answer: wrk's own Requests/sec divides by the full -d
-- duration even when every thread stopped early at its cap.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")

local function now()
   ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
   return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local key = os.getenv("BENCH_APP_KEY") or ""
local phones = tonumber(os.getenv("BENCH_PHONES") or "1")
local business = os.getenv("BENCH_BUSINESS") or "B-BENCH"
local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   statuses = {}
   samples = {}
   answered = 0
   counter = 0
   first_request = 0
   last_answer = 0
   headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. key,
   }
end

function request()
   -- 100,000,000 numbers in +86138xxxxxxxx; threads start 37,000,000 apart.
   local base = (id * 37000000 + counter * phones) % 100000000
   counter = counter + 1
   if first_request == 0 then
      first_request = now()
   end
   local list = {}
   for i = 0, phones - 1 do
      list[#list + 1] = string.format('"+86138%08d"', (base + i) % 100000000)
   end
   local body = '{"businessNo":"' .. business .. '","phones":[' .. table.concat(list, ",")
      .. '],"params":["123456"]}'
   return wrk.format("POST", nil, headers, body)
end

function response(status, hdrs, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status >= 300 and samples[status] == nil then
      samples[status] = string.sub(string.gsub(body or "", "[\r\n]", " "), 1, 400)
   end
   answered = answered + 1
   last_answer = now()
   if max_requests > 0 and answered >= max_requests then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local totals = {}
   local firsts = {}
   local started, stopped = nil, nil
   for _, thread in ipairs(threads) do
      local first, last = thread:get("first_request"), thread:get("last_answer")
      if first and first > 0 and (started == nil or first < started) then
         started = first
      end
      if last and last > 0 and (stopped == nil or last > stopped) then
         stopped = last
      end
      for status, count in pairs(thread:get("statuses")) do
         totals[status] = (totals[status] or 0) + count
      end
      for status, body in pairs(thread:get("samples")) do
         firsts[status] = firsts[status] or body
      end
   end
   for status, count in pairs(totals) do
      io.write(string.format("status %d: %d\n", status, count))
   end
   for status, body in pairs(firsts) do
      io.write(string.format("sample %d: %s\n", status, body))
   end
   if started and stopped then
      io.write(string.format("elapsed %.6f\n", stopped - started))
   end
end
