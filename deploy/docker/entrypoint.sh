#!/bin/sh
# Entrypoint of the mslb images (deploy/Dockerfile), run under tini as PID 1 and exec'ing the service,
# so SIGTERM from `docker stop` / Kubernetes reaches mslb-front / mslb-back, which drains and exits.
#
# The service needs CAP_NET_ADMIN and nothing more. As the image's non-root user it gets it from the
# file capability on /usr/local/bin/mslb-node (cap_net_admin=ep), which the kernel grants only when
# NET_ADMIN is in the container's bounding set (`--cap-add NET_ADMIN`, Kubernetes
# `capabilities.add: [NET_ADMIN]`) and no_new_privs is off. This script checks both first, so a
# missing capability is one clear line instead of "exec: operation not permitted".
# Environment: MSLB_ROLE (front | back, set by the image target), MSLB_CONFIG (the config file),
# MSLB_NODE and MSLB_APP (defaults /usr/local/bin/mslb-node, /app).
set -eu
role=${MSLB_ROLE:?MSLB_ROLE must be front or back}
node=${MSLB_NODE:-/usr/local/bin/mslb-node}
app=${MSLB_APP:-/app}
case $role in front | back) ;; *) echo "mslb: MSLB_ROLE must be front or back, not '$role'" >&2; exit 2 ;; esac

field() { sed -n "s/^$1:[[:space:]]*//p" /proc/self/status; }
bnd=$(field CapBnd)
if [ $(( (0x$bnd >> 12) & 1 )) -ne 1 ]; then
  echo "mslb-$role needs CAP_NET_ADMIN: start the container with --cap-add NET_ADMIN --device /dev/net/tun (Kubernetes: securityContext.capabilities.add: [NET_ADMIN])" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] && [ "$(field NoNewPrivs)" = 1 ]; then
  echo "mslb-$role needs CAP_NET_ADMIN, which no_new_privs withholds from a non-root user: drop --security-opt no-new-privileges (Kubernetes: allowPrivilegeEscalation: true), or run as root with only NET_ADMIN" >&2
  exit 1
fi
if [ ! -c /dev/net/tun ]; then
  echo "mslb-$role needs /dev/net/tun: start the container with --device /dev/net/tun" >&2
  exit 1
fi
exec "$node" "$app/dist/$role/main.js" "$@"
