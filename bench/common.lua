-- Shared by the bench scripts (each loads it first): numbers the threads,
-- counts the response statuses of each thread, and prints the run's figures
-- as one JSON line, "BENCH_RESULT {...}", for bench/run.py to read.

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_index", #threads)
end

-- Per thread: status code -> count. Global, so that done() can read it.
statuses = {}

function count_status(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function response(status, headers, body)
  count_status(status)
end

-- The value of a response header, whatever the case of its name.
function header(headers, wanted)
  for name, value in pairs(headers) do
    if string.lower(name) == wanted then
      return value
    end
  end
  return nil
end

local function json(value)
  if type(value) == "table" then
    local items = {}
    for key, item in pairs(value) do
      items[#items + 1] = string.format('"%s":%s', tostring(key), json(item))
    end
    return "{" .. table.concat(items, ",") .. "}"
  end
  return tostring(value)
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      local key = tostring(status)
      totals[key] = (totals[key] or 0) + count
    end
  end
  local result = {
    requests = summary.requests,
    duration_us = summary.duration,
    bytes = summary.bytes,
    errors = summary.errors,
    statuses = totals,
    latency_us = {
      p50 = latency:percentile(50),
      p90 = latency:percentile(90),
      p99 = latency:percentile(99),
      max = latency.max,
      mean = latency.mean,
    },
  }
  io.write("BENCH_RESULT ", json(result), "\n")
end
