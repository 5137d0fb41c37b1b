#!/usr/bin/env bash
# Builds Redis 8.6.3 from Debian experimental's source tarball into .cache/redis-8.6.3/ (once;
# idempotent), so the queue tests can also run against the Redis 8.x stream commands
# (XACKDEL, ACKED trimming, XREADGROUP … CLAIM, XADD IDMP). apt only has redis 7.0.
#
#   scripts/setup-redis8.sh            builds if missing; prints the redis-server path
#
# The tarball's checksum is verified. Set TANDEM_SKIP_REDIS8=1 to skip (the tests then run
# against the apt redis only).
set -euo pipefail

version=8.6.3
sha256=58d0d1eb49a1ea6c2179659707fec171b1e2e2b8d5157ed2ec59d1d66ad5a654
url="http://deb.debian.org/debian/pool/main/r/redis/redis_${version}.orig.tar.gz"
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.cache/redis-$version"
server="$cache/redis-server"

if [[ "${TANDEM_SKIP_REDIS8:-}" == 1 ]]; then exit 0; fi
if [[ -x "$server" ]] && "$server" --version 2>/dev/null | grep -q "v=$version"; then
  echo "$server"; exit 0
fi

mkdir -p "$cache"
tarball="$cache/redis_${version}.orig.tar.gz"
if ! echo "$sha256  $tarball" | sha256sum -c --status 2>/dev/null; then
  echo "tandem setup: downloading redis $version source from $url" >&2
  if ! curl -fsSL --retry 2 -o "$tarball.part" "$url"; then
    rm -f "$tarball.part"
    echo "setup-redis8.sh: could not download $url (no network?). Fetch it by hand into" \
      "$tarball, or set TANDEM_SKIP_REDIS8=1 to test against redis 7 only." >&2
    exit 1
  fi
  mv "$tarball.part" "$tarball"
  if ! echo "$sha256  $tarball" | sha256sum -c --status; then
    echo "setup-redis8.sh: checksum mismatch for $tarball (expected sha256 $sha256); removed it." >&2
    rm -f "$tarball"; exit 1
  fi
fi

build="$cache/build"
rm -rf "$build"; mkdir -p "$build"
tar -xzf "$tarball" -C "$build" --strip-components=1
echo "tandem setup: building redis $version (about 2 minutes on 2 cores)" >&2
if ! make -C "$build" -j2 BUILD_TLS=no MALLOC=libc >"$cache/build.log" 2>&1; then
  echo "setup-redis8.sh: building redis $version failed; see $cache/build.log" \
    "(needs make, gcc, pkg-config)." >&2
  exit 1
fi
install -m 755 "$build/src/redis-server" "$server"
install -m 755 "$build/src/redis-cli" "$cache/redis-cli"
rm -rf "$build"
echo "$server"
