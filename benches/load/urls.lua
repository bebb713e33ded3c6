-- wrk script: cycles through the map's tile URLs (heatmap PNG, H3 cell and boundary
-- vector tiles over Lancashire at zooms 9-11) and OGC API collection URLs, each thread
-- starting at a different place in the list, then prints the figures run.sh records.

local urls = {}
local function add(u) urls[#urls + 1] = u end

-- Lancashire's tiles: {zoom, first x, last x, first y, last y}.
local views = { { 9, 251, 253, 163, 165 }, { 10, 503, 506, 327, 331 }, { 11, 1007, 1012, 655, 661 } }
for _, v in ipairs(views) do
  local z = v[1]
  for x = v[2], v[3] do
    for y = v[4], v[5] do
      add(string.format("/tiles/heatmap/%d/%d/%d.png", z, x, y))
      add(string.format("/tiles/cells/%d/%d/%d.mvt", z, x, y))
      add(string.format("/tiles/boundaries/%d/%d/%d.mvt", z, x, y))
    end
  end
end
add("/tiles/heatmap/10/504/329.png?types=burglary")
add("/tiles/cells/10/504/329.mvt?types=burglary&from=2024-01")

local collections = {
  "/collections",
  "/collections/districts",
  "/collections/districts/items",
  "/collections/districts/items?limit=100",
  "/collections/lsoas/items?limit=100&bbox=-2.8,53.7,-2.6,53.8",
  "/collections/h3-8/items?limit=200",
  "/collections/hotspots/items?limit=50",
  "/collections/patrol/items",
  "/collections/incidents/items?limit=100",
  "/collections/districts/items?f=csv",
}
-- Collections make up about a quarter of the requests, as when a dashboard sits beside the map.
-- ONLY_TILES=1: the tiles alone (after the warm-up every one is cached).
local tiles = #urls
local n_collections = os.getenv("ONLY_TILES") and 0 or math.floor(tiles / 3)
for i = 1, n_collections do
  add(collections[(i - 1) % #collections + 1])
end

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

local n = 0
function init(args)
  n = (id or 0) * 37
end

function request()
  n = n + 1
  return wrk.format("GET", urls[n % #urls + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format("urls %d (tiles %d, collection requests %d)\n", #urls, tiles, #urls - tiles))
  io.write(string.format("requests %d in %.1f s: %.0f req/s, %.1f MB read\n",
    summary.requests, secs, summary.requests / secs, summary.bytes / 1e6))
  io.write(string.format("latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("non-2xx/3xx %d; socket errors: connect %d, read %d, write %d, timeout %d\n",
    e.status, e.connect, e.read, e.write, e.timeout))
end
