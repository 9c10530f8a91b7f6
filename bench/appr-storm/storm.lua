-- wrk script for the OperatorHub storm: replays a precomputed list of request paths.
--
-- Environment:
--   STORM_PATHS  file of `step<TAB>path` lines (seed.py walk): list/show/blob triples
--   STORM_STEP   all (default) | list | show | blob   -- replay only one step's paths
--   STORM_OUT    where to write the JSON summary (default: print it only)
--
-- Each thread has its own Lua state and walks the whole list round-robin from its own
-- starting offset, so the threads' connections interleave different packages. The triples
-- keep the hot-path order list -> show -> blob of the same package. wrk measures every
-- request's latency (from write to complete response) into its histogram; done() turns that
-- into percentiles.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local reqs = {}
local pos = 1

function init(args)
  local file = os.getenv("STORM_PATHS") or error("STORM_PATHS is not set")
  local step = os.getenv("STORM_STEP") or "all"
  local f = assert(io.open(file, "r"))
  for line in f:lines() do
    local kind, path = line:match("^(%a+)\t(.+)$")
    if kind and (step == "all" or step == kind) then
      reqs[#reqs + 1] = wrk.format("GET", path, { ["User-Agent"] = "berth-appr-storm" })
    end
  end
  f:close()
  if #reqs == 0 then error("no request paths for step " .. step .. " in " .. file) end
  -- Start each thread at a different triple.
  local nthreads = tonumber(os.getenv("STORM_THREADS") or "1")
  local stride = 3 * math.floor(#reqs / 3 / math.max(nthreads, 1))
  if step ~= "all" then stride = math.floor(#reqs / math.max(nthreads, 1)) end
  pos = ((tid or 0) * stride) % #reqs + 1
end

function request()
  local r = reqs[pos]
  pos = pos + 1
  if pos > #reqs then pos = 1 end
  return r
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local ms = function(us) return us / 1000.0 end
  local out = string.format(
    '{"step":"%s","requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,' ..
    '"latency_ms":{"mean":%.3f,"stdev":%.3f,"min":%.3f,"p50":%.3f,"p90":%.3f,"p99":%.3f,"p999":%.3f,"max":%.3f},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}}',
    os.getenv("STORM_STEP") or "all", summary.requests, secs, summary.requests / secs, summary.bytes,
    ms(latency.mean), ms(latency.stdev), ms(latency.min), ms(latency:percentile(50)), ms(latency:percentile(90)),
    ms(latency:percentile(99)), ms(latency:percentile(99.9)), ms(latency.max),
    e.connect, e.read, e.write, e.timeout, e.status)
  io.write("STORM_JSON " .. out .. "\n")
  local path = os.getenv("STORM_OUT")
  if path and path ~= "" then
    local f = assert(io.open(path, "w"))
    f:write(out .. "\n")
    f:close()
  end
end
