-- GET the paths in BENCH_PATHS (separated by spaces) in turn, logged in with BENCH_COOKIE.
dofile(os.getenv("BENCH_DIR") .. "/report.lua")

local paths = {}
for path in string.gmatch(os.getenv("BENCH_PATHS"), "%S+") do
  table.insert(paths, path)
end
local index = 0

init = function(args)
  wrk.headers["X-Forwarded-Proto"] = "https"
  if os.getenv("BENCH_COOKIE") then
    wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
  end
end

request = function()
  index = index % #paths + 1
  return wrk.format("GET", paths[index])
end
