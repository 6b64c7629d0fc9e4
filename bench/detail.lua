-- GET /api/v1/events/<id>/ for random ids from the range given after `--`.
-- wrk -s bench/detail.lua http://127.0.0.1:8000 -- <lowest id> <highest id>

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")

local lowest, highest

function init(args)
  lowest, highest = tonumber(args[1]), tonumber(args[2])
  math.randomseed(thread_index * 7919)
end

function request()
  return wrk.format("GET", "/api/v1/events/" .. math.random(lowest, highest) .. "/")
end
