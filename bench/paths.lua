-- GET the paths given after `--` in turn; each thread starts at its own one.
-- wrk -s bench/paths.lua http://127.0.0.1:8000 -- /api/v1/events/ /api/v1/events/?q=talks

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")

local paths = {}
local position = 1

function init(args)
  for i = 1, #args do
    paths[i] = args[i]
  end
  position = (thread_index - 1) % #paths + 1
end

function request()
  local path = paths[position]
  position = position % #paths + 1
  return wrk.format("GET", path)
end
