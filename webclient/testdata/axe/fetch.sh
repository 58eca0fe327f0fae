#!/usr/bin/env bash
# Re-fetches the vendored axe-core (the accessibility engine the Chromium
# tests inject into every page) from npm, by exact version, and checks it
# against the recorded checksum. The tests read axe.min.js from this
# directory, so CI needs neither node nor the network for it.
#
# To move to another version: set VERSION, run this script with UPDATE=1,
# and commit the new files and SHA256SUMS.
set -euo pipefail
cd "$(dirname "$0")"
VERSION=4.14.1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "axe-core@$VERSION" >/dev/null && tar xzf "axe-core-$VERSION.tgz")
for f in axe.min.js LICENSE LICENSE-3RD-PARTY.txt; do
  cp "$tmp/package/$f" "$f"
done
echo "$VERSION" > VERSION
if [ "${UPDATE:-}" = 1 ]; then
  sha256sum axe.min.js LICENSE LICENSE-3RD-PARTY.txt > SHA256SUMS
fi
sha256sum -c SHA256SUMS
