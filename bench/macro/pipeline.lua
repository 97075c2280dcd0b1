-- bench/macro/pipeline.lua: wrk sends DEPTH requests for PATH in one write
-- and waits for all DEPTH responses before the next batch (HTTP/1.1
-- pipelining). wrk counts every response, so its Requests/sec is per
-- request; its latency is per batch.
--
--   wrk -t1 -c256 -d5s -s bench/macro/pipeline.lua http://HOST:PORT -- 16 /plaintext
--
-- Defining request() makes wrk call it once per batch; the batch is built
-- once per thread in init, so the per-batch cost is one Lua call.

local batch

function init(args)
    local depth = tonumber(args[1] or "16")
    local path = args[2] or "/plaintext"
    if depth == nil or depth < 1 then
        error("pipeline.lua: depth must be a positive number, got " .. tostring(args[1]))
    end
    local one = wrk.format("GET", path)
    local parts = {}
    for i = 1, depth do
        parts[i] = one
    end
    batch = table.concat(parts)
end

function request()
    return batch
end
