-- wrk script: POST /api/v1/webhooks/servicenow with signed webhooks read from BENCH_HOOKS
-- ("SIGNATURE BODY" per line, made by make_webhooks.py). Each wrk thread sends its own share
-- of the lines (thread n of N takes lines n, n+N, ...), so no change is sent twice unless the
-- file runs out (then it starts over and the repeats are duplicates).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  lines = {}
  local n = 0
  local total = tonumber(os.getenv("BENCH_THREADS") or "2")
  for line in io.lines(os.getenv("BENCH_HOOKS")) do
    n = n + 1
    if n % total == id % total then lines[#lines + 1] = line end
  end
  next_line = 0
end

function request()
  next_line = next_line % #lines + 1
  local line = lines[next_line]
  local space = string.find(line, " ", 1, true)
  local headers = {["Content-Type"] = "application/json",
                   ["X-SN-Signature"] = string.sub(line, 1, space - 1)}
  return wrk.format("POST", "/api/v1/webhooks/servicenow", headers, string.sub(line, space + 1))
end

function response(status, headers, body)
  if status ~= 202 and status ~= 201 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
