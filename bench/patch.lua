-- Conditional PATCH with history: thread n (one connection each: wrk -t N -c N)
-- owns the n-th event id given after `--`. It reads the event's ETag with a GET,
-- then PATCHes the summary with If-Match, taking the new ETag from each answer.
-- After a failed write (a 412, say) it reads the ETag again.
-- wrk -t 8 -c 8 -s bench/patch.lua http://127.0.0.1:8000 -- <token> <id 1> ... <id 8>

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")

local token, path, etag
local revision = 0

function init(args)
  token = args[1]
  path = "/api/v1/events/" .. args[thread_index + 1] .. "/"
end

function request()
  if etag == nil then
    return wrk.format("GET", path)
  end
  revision = revision + 1
  local body = string.format(
    '{"summary": "bench revision %d-%d-%d"}', os.time(), thread_index, revision
  )
  return wrk.format("PATCH", path, {
    ["Authorization"] = "Token " .. token,
    ["Content-Type"] = "application/json",
    ["If-Match"] = etag,
    ["X-Change-Reason"] = "bench",
  }, body)
end

function response(status, headers, body)
  count_status(status)
  if status >= 200 and status < 300 then
    etag = header(headers, "etag")
  else
    etag = nil
  end
end
