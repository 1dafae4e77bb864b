-- wrk script for scripts/loadtest.sh: POST /v1/nearest, IGLA_BATCH words per request (default 1)
-- taken in turn from IGLA_WORDS (one word per line, JSON-safe), each wrk thread from its own
-- offset. The requests are formatted once at start (the load generator shares the machine with
-- the server: its per-request work is kept small).
--
-- Paced (IGLA_RATE=R requests/s in all, IGLA_CONNECTIONS=N): each connection waits an
-- exponentially distributed time of mean N/R before each request, so the N connections offer
-- ~R requests/s (Poisson arrivals) while every latency stays well under N/R; a response slower
-- than that delays its connection's next request (the offered rate then drops: compare wrk's
-- Requests/sec with R). wrk times a request from its first byte written, so the wait is not in
-- the latency.
local words = {}
for line in io.lines(os.getenv("IGLA_WORDS")) do words[#words + 1] = line end
local batch = tonumber(os.getenv("IGLA_BATCH") or "1")
local k = tonumber(os.getenv("IGLA_K") or "10")
local thread_no = 0

function setup(thread)
  thread:set("first_word", thread_no * 7919)
  thread_no = thread_no + 1
end

local requests = {}
local next_request = 0

function init(args)
  local w = first_word or 0
  math.randomseed(os.time() + w)
  for r = 1, 2000 do
    local parts = {}
    for i = 1, batch do
      w = w % #words + 1
      parts[i] = '"' .. words[w] .. '"'
    end
    local body = '{"words":[' .. table.concat(parts, ",") .. '],"k":' .. k .. '}'
    requests[r] = wrk.format("POST", "/v1/nearest", {["Content-Type"] = "application/json"}, body)
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

local rate = tonumber(os.getenv("IGLA_RATE") or "0")
if rate > 0 then
  local mean_ms = 1000 * tonumber(os.getenv("IGLA_CONNECTIONS") or "1") / rate
  function delay()
    return -mean_ms * math.log(1 - math.random())
  end
end
