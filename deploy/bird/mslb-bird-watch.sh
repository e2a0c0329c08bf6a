#!/bin/sh
# mslb-bird-watch: announce the service addresses over BGP only while the local mslb-front is ready.
#
# Polls the front's /readyz. After RISE successes in a row it enables the BIRD protocols that hold S
# (front.conf: mslb_s6, mslb_s4), which announces S to the routers; after FALL failures in a row
# (front stopped, crashed, starting, no table loaded) it disables them, which withdraws S at once.
# It re-asserts the wanted state every REASSERT polls (a restarted BIRD starts with them disabled) and
# retries a birdc call that failed on the next poll. SIGTERM/SIGINT: withdraw, then exit 0.
#
# usage: mslb-bird-watch.sh [-u READYZ_URL] [-s BIRD_SOCKET] [-i SECONDS] [-r RISE] [-f FALL] [PROTOCOL...]
# defaults: -u http://[::1]:9101/readyz -s /run/bird/bird.ctl -i 1 -r 2 -f 1, protocols mslb_s6 mslb_s4
# (environment: MSLB_READYZ_URL, BIRD_SOCKET, MSLB_WATCH_INTERVAL, MSLB_WATCH_RISE, MSLB_WATCH_FALL)
set -u

url=${MSLB_READYZ_URL:-"http://[::1]:9101/readyz"}
sock=${BIRD_SOCKET:-/run/bird/bird.ctl}
interval=${MSLB_WATCH_INTERVAL:-1}
rise=${MSLB_WATCH_RISE:-2}
fall=${MSLB_WATCH_FALL:-1}
reassert=30

while getopts "u:s:i:r:f:h" opt; do
  case $opt in
    u) url=$OPTARG ;;
    s) sock=$OPTARG ;;
    i) interval=$OPTARG ;;
    r) rise=$OPTARG ;;
    f) fall=$OPTARG ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- mslb_s6 mslb_s4

log() { echo "mslb-bird-watch: $*"; }

# birdc ACTION on every protocol; 0 only if all succeeded ("enabled" or "already enabled" etc.).
apply() {
  rc=0
  for p in $protocols; do
    out=$(birdc -s "$sock" "$1" "$p" 2>&1) || rc=1
    case $out in *"$p: "*) ;; *) rc=1 ;; esac
  done
  return $rc
}

protocols=$*
want=withdraw     # what readiness asks for
applied=none      # what BIRD was last told successfully
ok=0
bad=0
n=0

trap 'apply disable >/dev/null 2>&1; log "withdrawn (signal), exiting"; exit 0' TERM INT

log "watching $url, BIRD at $sock, protocols: $protocols (rise $rise, fall $fall, every ${interval}s)"
while :; do
  if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
    ok=$((ok + 1)); bad=0
    [ "$ok" -ge "$rise" ] && want=announce
  else
    bad=$((bad + 1)); ok=0
    [ "$bad" -ge "$fall" ] && want=withdraw
  fi
  n=$((n + 1))
  if [ "$want" != "$applied" ] || [ $((n % reassert)) -eq 0 ]; then
    if [ "$want" = announce ]; then action=enable; else action=disable; fi
    if apply "$action"; then
      [ "$want" != "$applied" ] && log "$want (front $( [ "$want" = announce ] && echo ready || echo not ready ))"
      applied=$want
    else
      log "birdc $action failed (BIRD not reachable at $sock?); retrying"
      applied=none
    fi
  fi
  sleep "$interval" &
  wait $!
done
