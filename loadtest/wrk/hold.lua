-- wrk: POST a one-seat hold on one event, with a bearer token (env TOKEN, EVENT).
wrk.method = "POST"
wrk.path = "/api/v1/events/" .. os.getenv("EVENT") .. "/bookings"
wrk.body = '{"quantity":1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("latency p50 %.2f ms, p99 %.2f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
