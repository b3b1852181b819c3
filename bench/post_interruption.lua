-- wrk script: POST /api/v1/interruptions with a ~2 KB body and a unique id per request.
-- The token comes from the environment (BENCH_TOKEN); an empty one sends no header.
local token = os.getenv("BENCH_TOKEN") or ""
local pad = string.rep("The primary database node stopped answering; failover to the standby. ", 26)
local counter = 0

-- Ids must be unique across threads and across the runs of one benchmark (BENCH_RUN).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("prefix", (os.getenv("BENCH_RUN") or tostring(os.time())) .. "t" .. threads)
end

function request()
  counter = counter + 1
  local body = '{"id":"INC' .. prefix .. '-' .. counter ..
      '","service":"oracle-prod","type":"outage","start":"2026-11-03T14:00:00Z",' ..
      '"end":"2026-11-03T14:05:00Z","description":"' .. pad .. '"}'
  local headers = {["Content-Type"] = "application/json"}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("POST", "/api/v1/interruptions", headers, body)
end

function response(status, headers, body)
  if status ~= 201 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
