#!/usr/bin/env bash
# Debian packages the build, the agent and the tests need. Idempotent: does
# nothing when everything is already installed.
set -euo pipefail
PKGS=(clang llvm bpftool libbpf-dev libbpf1 make docker.io debootstrap busybox-static iproute2 procps util-linux openssl ca-certificates curl)
# the compiled fast loop (make accel): a C compiler and the headers of the interpreter
# the virtualenv is made from (a Debian python3 has them in python3-dev)
PKGS+=(gcc)
inc=$("${PYTHON:-python3}" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$inc/Python.h" ] || PKGS+=(python3-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
