-- wrk script: POST one send-message request; the app key comes from BENCH_APP_KEY.
-- Counts responses per HTTP status and prints them as "status <code>: <count>" at the end.

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
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         totals[status] = (totals[status] or 0) + count
      end
   end
   for status, count in pairs(totals) do
      io.write(string.format("status %d: %d\n", status, count))
   end
end
