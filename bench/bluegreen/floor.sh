# shellcheck shell=bash
# The per-target floor of a blue-green switch, done by hand on a fleet host (run as
# root through `docker exec -i HOST bash -s`, after `set -- TENANT BASE_PORT`): what
# drover must do for one target at the least, with no SSH, no drover, no checks beyond
# the essential. Reads the live color from drover's state, then, timed in ms:
#   start    restart the idle color's unit (drover-<tenant>-<idle>.service)
#   healthy  poll its /health every 10 ms until it answers 200
#   switch   write the nginx upstream for the idle port, nginx -t, graceful reload
#   request  one request through the proxy (Host: <tenant>) answering 200
# and prints `floor_ms=TOTAL start=.. healthy=.. switch=.. request=..`. Afterwards
# (untimed) it puts nginx back on the live color, so drover's state stays true.
set -euo pipefail
tenant=$1 base=$2
conf=/etc/nginx/conf.d/drover-$tenant.conf
live=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["active"])' "/var/lib/drover/$tenant/state.json" 2>/dev/null ||
  sed -n 's/.*active color \([a-z]*\)\..*/\1/p' "$conf")
if [ "$live" = blue ]; then idle=green port=$((base + 1)); else idle=blue port=$base; fi
unit=drover-$tenant-$idle.service
saved=$(mktemp)
cp -p "$conf" "$saved"
ms() { date +%s%3N; }
upstream() { # port
  sed "s/server 127\.0\.0\.1:[0-9]*;/server 127.0.0.1:$1;/" "$saved" >"$conf.new"
  mv -f "$conf.new" "$conf"
}
t0=$(ms)
systemctl restart "$unit"
t1=$(ms)
for _ in $(seq 3000); do
  curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && break
  sleep 0.01
done
t2=$(ms)
upstream "$port"
nginx -t -q
systemctl reload nginx
t3=$(ms)
curl -fsS -m 3 -o /dev/null -H "Host: $tenant" http://127.0.0.1/health
t4=$(ms)
cp -p "$saved" "$conf" && rm -f "$saved" && nginx -t -q && systemctl reload nginx
echo "floor_ms=$((t4 - t0)) start=$((t1 - t0)) healthy=$((t2 - t1)) switch=$((t3 - t2)) request=$((t4 - t3))"
