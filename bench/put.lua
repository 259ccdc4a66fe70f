-- put.lua - wrk script: PUT pre-generated batches, each one once.
--
--   wrk -t C -c C -d 10s -s bench/put.lua URL -- PATTERN DATABASE KEYFILE TOKENFILE
--
-- Run one connection per thread (-t = -c).  Thread k (0-based) reads the
-- file string.format(PATTERN, k): one batch (a gen_events.py JSON array) per
-- line, batches k, k+C, k+2C, ... of the generated list, in that order, so
-- that no two connections send the same ids and, the database having been
-- reset beforehand, every batch finds about half of its ids new and half
-- existing.  Each batch is sent once; a thread that has sent all of its
-- batches starts again from its first one (those batches are then all
-- updates), and done() reports how often that happened.
--
-- The headers are the ones the program checks: x-api-key, Authorization:
-- Bearer, vbasoftware-database, User-Agent and Content-Type.
--
-- done() prints one line "BENCH {json}" with the request count, duration,
-- the latency percentiles from wrk's histogram (microseconds), the socket
-- errors, how many responses were not 207, and how many batches were sent
-- again.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local function slurp(path)
   local f = assert(io.open(path, "rb"))
   local s = f:read("*a")
   f:close()
   return s
end

local function trim(s)
   return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

function init(args)
   local pattern, database, keyfile, tokenfile = args[1], args[2], args[3], args[4]
   local headers = {
      ["x-api-key"] = trim(slurp(keyfile)),
      ["Authorization"] = "Bearer " .. trim(slurp(tokenfile)),
      ["vbasoftware-database"] = database,
      ["User-Agent"] = "events-batch-bench/1 (wrk)",
      ["Content-Type"] = "application/json",
   }
   reqs = {}
   for line in io.lines(string.format(pattern, id)) do
      if line ~= "" then
         reqs[#reqs + 1] = wrk.format("PUT", nil, headers, line)
      end
   end
   assert(#reqs > 0, "no batch for thread " .. id)
   nxt = 0
   reused = 0
   bad = 0
   badstatus = ""
end

function request()
   if nxt >= #reqs then
      reused = reused + 1
   end
   local r = reqs[(nxt % #reqs) + 1]
   nxt = nxt + 1
   return r
end

function response(status, headers, body)
   if status ~= 207 then
      bad = bad + 1
      badstatus = tostring(status)
   end
end

function done(summary, latency, requests)
   local reused_total, bad_total, last_bad = 0, 0, ""
   for _, t in ipairs(threads) do
      reused_total = reused_total + t:get("reused")
      bad_total = bad_total + t:get("bad")
      if t:get("badstatus") ~= "" then
         last_bad = t:get("badstatus")
      end
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
      '"err_connect": %d, "err_read": %d, "err_write": %d, "err_status": %d, ' ..
      '"err_timeout": %d, "not_207": %d, "last_bad_status": "%s", "reused": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout,
      bad_total, last_bad, reused_total))
end
