-- wrk script for bench/issue.ts: each request posts the next pre-minted body (one-time tokens
-- cannot be replayed), read from the file named by the first script argument.
local bodies = {}
local next_body = 0

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
end

function request()
  next_body = next_body + 1
  local body = bodies[next_body] or bodies[#bodies]
  return wrk.format("POST", "/api/v1/sign", { ["Content-Type"] = "application/json" }, body)
end
