-- wrk script: POST one send-message request; the app key comes from $BENCH_APP_KEY.
-- At the end it prints "status <code>: <count>" per HTTP status and, for every status of
-- 300 or more, "sample <code>: <first body seen>" so run.py can report failures precisely.

local key = os.getenv("BENCH_APP_KEY") or ""

wrk.method = "POST"
wrk.body = '{"businessNo":"B-BENCH","phones":["+8613800138000"],"params":["123456"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   statuses = {}
   samples = {}
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status >= 300 and samples[status] == nil then
      samples[status] = string.sub(string.gsub(body or "", "[\r\n]", " "), 1, 400)
   end
end

function done(summary, latency, requests)
   local totals = {}
   local firsts = {}
   for _, thread in ipairs(threads) do
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
end
