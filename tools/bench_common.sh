# shellcheck shell=sh
# bench_common.sh - shell functions tools/bench_peers.sh and tools/load_test.sh
# share; sourced (POSIX sh), not run.

# wrk_rotation_lua FILE: writes a wrk script that POSTs the JPEGs named in
# $LOAD_PHOTOS (space-separated), in rotation, to /classify?topk=1. The caller
# appends the done() function that prints its figures.
wrk_rotation_lua() {
    cat >"$1" <<'LUA'
local bodies = {}
for path in string.gmatch(os.getenv("LOAD_PHOTOS"), "%S+") do
    local f = assert(io.open(path, "rb"))
    bodies[#bodies + 1] = f:read("*all")
    f:close()
end
local i = 0
request = function()
    i = i % #bodies + 1
    return wrk.format("POST", "/classify?topk=1", {["Content-Type"] = "image/jpeg"}, bodies[i])
end
LUA
}

# stat_ticks FILE: utime + stime, in clock ticks, of a /proc/PID/stat or
# /proc/PID/task/TID/stat file (fields 14 and 15; counted after the comm,
# which may hold spaces); nothing if the file is gone.
stat_ticks() {
    sed 's/^.*) //' "$1" 2>/dev/null | awk '{ print $12 + $13 }'
}
