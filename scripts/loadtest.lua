-- wrk script for scripts/loadtest.sh: POST /v1/nearest, IGLA_BATCH words per request (default 1)
-- taken in turn from IGLA_WORDS (one word per line, JSON-safe), each wrk thread from its own offset.
local words = {}
for line in io.lines(os.getenv("IGLA_WORDS")) do words[#words + 1] = line end
local batch = tonumber(os.getenv("IGLA_BATCH") or "1")
local k = tonumber(os.getenv("IGLA_K") or "10")
local next_word = 0
local thread_no = 0

function setup(thread)
  thread:set("next_word", thread_no * 7919)
  thread_no = thread_no + 1
end

function request()
  local parts = {}
  for i = 1, batch do
    next_word = next_word % #words + 1
    parts[i] = '"' .. words[next_word] .. '"'
  end
  local body = '{"words":[' .. table.concat(parts, ",") .. '],"k":' .. k .. '}'
  return wrk.format("POST", "/v1/nearest", {["Content-Type"] = "application/json"}, body)
end
