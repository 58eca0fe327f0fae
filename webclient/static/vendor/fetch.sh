#!/bin/sh
# Re-fetch the vendored QR decoder from the npm registry by exact version and
# check that the committed files are byte-identical (or replace them with -w).
# Usage: sh webclient/static/vendor/fetch.sh [-w]
# Needs npm and tar. See README.md beside this script for why these packages.
set -eu
BARCODE_DETECTOR=3.2.2
ZXING_WASM=3.1.3 # the exact version barcode-detector@3.2.2 depends on

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "barcode-detector@$BARCODE_DETECTOR" "zxing-wasm@$ZXING_WASM" >/dev/null
mkdir bd zw
tar xzf "barcode-detector-$BARCODE_DETECTOR.tgz" -C bd
tar xzf "zxing-wasm-$ZXING_WASM.tgz" -C zw
dep=$(sed -n 's/.*"zxing-wasm": *"\([^"]*\)".*/\1/p' bd/package/package.json)
[ "$dep" = "$ZXING_WASM" ] || { echo "barcode-detector@$BARCODE_DETECTOR wants zxing-wasm $dep, not $ZXING_WASM" >&2; exit 1; }

mkdir -p out/barcode-detector out/zxing-wasm
cp bd/package/dist/iife/ponyfill.js bd/package/LICENSE out/barcode-detector/
cp zw/package/dist/reader/zxing_reader.wasm zw/package/LICENSE out/zxing-wasm/

status=0
for f in barcode-detector/ponyfill.js barcode-detector/LICENSE zxing-wasm/zxing_reader.wasm zxing-wasm/LICENSE; do
	if [ "${1:-}" = "-w" ]; then
		mkdir -p "$here/$(dirname "$f")"
		cp "out/$f" "$here/$f"
		echo "wrote $f"
	elif ! cmp -s "out/$f" "$here/$f"; then
		echo "differs from npm: $f" >&2
		status=1
	fi
done
[ "$status" = 0 ] && [ "${1:-}" != "-w" ] && echo "vendored files match barcode-detector@$BARCODE_DETECTOR and zxing-wasm@$ZXING_WASM"
exit $status
