-- wrk script for benchmarks/oidc.py.
--
-- With arguments (-- BODIES_FILE AUTHORIZATION): each request is POST <url> with the next line of
-- BODIES_FILE as its form body (a token request with a code of its own) and the given
-- Authorization header. When the lines run out, the last one is sent again (a used code: 400,
-- counted in status_errors). Without arguments: wrk's own request (GET, with -H headers).
-- done() prints one line: RESULT key=value ... (latencies in microseconds).

local bodies = nil
local position = 0
local authorization = nil

function init(args)
  if args[1] == nil then
    return
  end
  bodies = {}
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  authorization = args[2]
end

function request()
  if bodies == nil then
    return wrk.format()
  end
  position = position + 1
  if position > #bodies then
    position = #bodies
  end
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = authorization,
  }, bodies[position])
end

function done(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  ))
end
