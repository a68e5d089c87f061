-- Replays distinct signed pushes from pushgen's file: each wrk thread takes every
-- N-th line, so no push is sent twice (which would only measure the dedup shortcut).
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  local nthreads = tonumber(args[2])
  reqs = {}
  local n = 0
  for line in io.lines(args[1]) do
    if n % nthreads == tid then
      local path, body = line:match("^([^\t]+)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", path, { ["Content-Type"] = "text/xml" }, body)
    end
    n = n + 1
  end
  idx = 0
end

function request()
  idx = idx + 1
  if idx > #reqs then
    idx = 1
    wrapped = true
  end
  return reqs[idx]
end

function done(summary, latency, requests)
  -- Each thread holds its own share; a wrap means pushes were repeated (dedup hits).
  if summary.requests > 0 and wrapped then
    io.stderr:write("warning: pushes repeated; raise the count in bench/run.sh\n")
  end
end
