-- wrk script for bench/ocsp.ts: rotates over pre-built OCSP requests, one per leaf.
--   wrk ... -s ocsp.lua URL -- post FILE   FILE holds one DER request per line, in hex;
--                                          each is POSTed to the URL's path as application/ocsp-request
--   wrk ... -s ocsp.lua URL -- get FILE    FILE holds one request path per line (/ocsp/<base64>)
-- Requests are formatted once in init, so each request() is a table lookup.
local requests = {}
local next_request = 0

local function unhex(s)
  return (s:gsub("%x%x", function(byte) return string.char(tonumber(byte, 16)) end))
end

function init(args)
  local mode, file = args[1], args[2]
  for line in io.lines(file) do
    if #line > 0 then
      if mode == "post" then
        requests[#requests + 1] = wrk.format("POST", wrk.path, { ["Content-Type"] = "application/ocsp-request" }, unhex(line))
      else
        requests[#requests + 1] = wrk.format("GET", line)
      end
    end
  end
  if #requests == 0 then error("no requests in " .. file) end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end
