-- Replays distinct signed pushes from pushgen's file: each wrk thread takes every
-- N-th line, so no push is sent twice (which would only measure the dedup shortcut).
-- Lines are read as requests are made, not loaded in `init`: wrk runs the threads'
-- `init`s one after the other, and loading the file there (about 1.4 s per 100k lines)
-- let the first thread send alone for seconds outside the measured duration, which
-- overstated the push rate (a "5 s" run took 11.8 s).
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local headers = { ["Content-Type"] = "text/xml" }

function init(args)
  path_ = args[1]
  nthreads = tonumber(args[2])
  file = assert(io.open(path_))
  n = 0
end

-- The next line that is this thread's, from the start again past the end.
local function next_line()
  while true do
    local line = file:read("*l")
    if not line then
      file:seek("set")
      n = 0
      wrapped = true
      line = file:read("*l")
    end
    local mine = n % nthreads == tid
    n = n + 1
    if mine then
      return line
    end
  end
end

function request()
  local path, body = next_line():match("^([^\t]+)\t(.*)$")
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  -- Each thread holds its own share; a wrap means pushes were repeated (dedup hits).
  if summary.requests > 0 and wrapped then
    io.stderr:write("warning: pushes repeated; raise the count in bench/run.sh\n")
  end
end
