-- POST a full declaration (plan, title, impact, a link and an ARN) with a fresh idempotency key each time.
-- BENCH_BODY holds the form body with {KEY} where the key goes; BENCH_COOKIE the logged-in session.
dofile(os.getenv("BENCH_DIR") .. "/report.lua")

local counter = 0
local threads = 0

setup = function(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

init = function(args)
  wrk.method = "POST"
  wrk.path = "/declare/"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
  -- As production sees it behind its TLS proxy.
  wrk.headers["X-Forwarded-Proto"] = "https"
  wrk.headers["Origin"] = os.getenv("BENCH_ORIGIN")
  wrk.headers["Referer"] = os.getenv("BENCH_ORIGIN") .. "/declare/"
end

request = function()
  counter = counter + 1
  -- thread_id is set per thread by setup(); with the run's nonce the key is unique across the whole run.
  local key = os.getenv("BENCH_NONCE") .. string.format("%02x%022x", thread_id, counter)
  local body = string.gsub(os.getenv("BENCH_BODY"), "{KEY}", key)
  return wrk.format(nil, nil, nil, body)
end
