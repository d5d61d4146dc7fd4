-- ops.lua -- wrk script of bench/collections_vs_redis.py: one aside collection operation per
-- request, with its varying arguments drawn from math.random (a fixed seed per wrk thread).
--
--   wrk -t2 -c32 -d3s --latency -s bench/collections/ops.lua http://127.0.0.1:PORT -- OP SEED
--
-- OP is one of the operations below; SEED the seed of thread 0 (thread i uses SEED + i). Every
-- request is built by request(), which also counts what each thread sent; done() prints the
-- total as "sent: N", the number of requests written to the server. wrk's own "N requests"
-- counts the responses it read, so the two differ by the requests still in flight when the
-- run's time was up.

local API = "/cache/api/v1.0/?function="

local ops = {
    -- counter_increment on one key (Redis: INCR c)
    counter = function()
        return API .. "counter_increment&key=c"
    end,
    -- list_push of the string "xxx" at the list's back (Redis: LPUSH l xxx)
    list_push = function()
        return API .. "list_push&key=l&value=%22xxx%22"
    end,
    -- map_set of one of 10,000 fields (Redis: HSET m f__rand_int__ 1, -r 10000)
    map_set = function()
        return API .. "map_set&key=m&field=f" .. math.random(0, 9999) .. "&value=1"
    end,
    -- set_add of one of 1,000,000 integers (Redis: SADD s __rand_int__, -r 1000000)
    set_add = function()
        return API .. "set_add&key=s&value=" .. math.random(0, 999999)
    end,
    -- list_range of the first 10 items of a list of 100 (Redis: LRANGE r 0 9)
    list_range = function()
        return API .. "list_range&key=r&start=0&stop=10"
    end,
}

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    op = ops[args[1]]
    if op == nil then
        io.stderr:write("ops.lua: unknown operation '" .. tostring(args[1]) .. "'\n")
        os.exit(2)
    end
    math.randomseed((tonumber(args[2]) or 1) + id)
    sent = 0
end

function request()
    sent = sent + 1
    return wrk.format("GET", op())
end

function done(summary, latency, requests)
    local total = 0
    for _, thread in ipairs(threads) do
        total = total + thread:get("sent")
    end
    io.write(string.format("sent: %d\n", total))
end
