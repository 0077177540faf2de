#!/usr/bin/env bash
# Build the local Debian bookworm base image (default tag falcopy-base:bookworm)
# with debootstrap + `docker import`: no registry is reachable, so the image the
# Dockerfile starts FROM is made here from Debian packages.
#
#   scripts/build-base-image.sh [TAG]        FORCE=1 rebuilds an existing image
#
# The mirror is the one this machine's apt uses (MIRROR overrides it).
set -euo pipefail

TAG="${1:-falcopy-base:bookworm}"
SUITE="${SUITE:-bookworm}"

if [ -z "${FORCE:-}" ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "base image $TAG exists (FORCE=1 rebuilds it)"
  exit 0
fi

mirror_from_apt() {
  # deb822 sources first (Debian 12 default), then the one-line format
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '/^URIs:/ && $2 ~ /debian\/?$/ { print $2; exit }' "$f"
  done | head -n 1
  if [ -f /etc/apt/sources.list ]; then
    awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list
  fi
}
MIRROR="${MIRROR:-$(mirror_from_apt | head -n 1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
command -v docker >/dev/null || { echo "docker CLI is missing" >&2; exit 1; }

ROOTFS="$(mktemp -d /tmp/falcopy-rootfs.XXXXXX)"
cleanup() { rm -rf "$ROOTFS"; }
trap cleanup EXIT

echo "debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
  tail -n 30 "$ROOTFS.log" >&2
  rm -f "$ROOTFS.log"
  exit 1
}
rm -f "$ROOTFS.log"

# What a container image needs and debootstrap does not leave behind: the same
# apt sources as the host, no package caches, and no dpkg daemons started.
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" \
  >"$ROOTFS/etc/apt/sources.list"
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
  >"$ROOTFS/etc/apt/apt.conf.d/90falcopy-no-recommends"
# Images carry no manuals, docs or translations (copyright files stay), now or
# from packages installed later.
printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
  'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
  'path-exclude=/usr/share/locale/*' 'path-include=/usr/share/locale/locale.alias' \
  >"$ROOTFS/etc/dpkg/dpkg.cfg.d/90falcopy-slim"
find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/*
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/tmp/* \
  "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/*
: >"$ROOTFS/etc/hostname"

tar --numeric-owner -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap --variant=minbase $SUITE" - "$TAG" >/dev/null
echo "built $TAG ($(docker image inspect --format '{{.Size}}' "$TAG") bytes)"
