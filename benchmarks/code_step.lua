-- wrk script for benchmarks/http_code_step.py.
--
-- With arguments (-- FLOWS_FILE THREADS): each request is
--   POST /api/v1/sign-in/<flow id>/second-factor {"method":"totp","code":"<code>"} with its flow cookie
-- taking the next unused line "<flow id> <code> <flow cookie>" of FLOWS_FILE; thread i of n takes
-- lines i, i+n, i+2n... so no flow is sent twice. When the lines run out, requests
-- go to a flow that does not exist (a 404, counted as a failure) and `exhausted` says so.
-- Without arguments: wrk's own request (GET of the URL given on the command line).
--
-- done() prints one line: RESULT key=value ... (latencies in microseconds).

local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local flows = nil
local position = 0
exhausted = 0

function init(args)
  if args[1] == nil then
    return
  end
  local nthreads = tonumber(args[2])
  flows = {}
  local index = 0
  for line in io.lines(args[1]) do
    if index % nthreads == id then
      local flow, code, binding = line:match("^(%S+) (%d+) (%S+)$")
      table.insert(flows, { flow, code, binding })
    end
    index = index + 1
  end
end

local headers = { ["Content-Type"] = "application/json", ["User-Agent"] = "wrk (twofold benchmark)" }

function request()
  if flows == nil then
    return wrk.format(nil)
  end
  position = position + 1
  local item = flows[position]
  if item == nil then
    exhausted = exhausted + 1
    item = { "no-such-flow", "000000", "none" }
  end
  -- The flow cookie of the browser that passed the password step (the flow is bound to it).
  headers["Cookie"] = "twofold_flow=" .. item[3]
  return wrk.format("POST", "/api/v1/sign-in/" .. item[1] .. "/second-factor", headers,
    '{"method":"totp","code":"' .. item[2] .. '"}')
end

function done(summary, latency, requests)
  local out_of_flows = 0
  for _, thread in ipairs(threads) do
    out_of_flows = out_of_flows + (thread:get("exhausted") or 0)
  end
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d socket_errors=%d exhausted=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), errors.status,
    errors.connect + errors.read + errors.write + errors.timeout, out_of_flows))
end
