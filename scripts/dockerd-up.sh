#!/usr/bin/env bash
# Start dockerd if it is not answering yet (CI machines start with none).
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
mkdir -p /var/log
nohup dockerd >/var/log/falcopy-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "dockerd did not start; see /var/log/falcopy-dockerd.log" >&2
tail -n 30 /var/log/falcopy-dockerd.log >&2 || true
exit 1
