#!/usr/bin/env bash
# CI (`cargo xtask ci`): runs chat.py as the README tells a Python user to, against a fresh
# `courier serve` on a free loopback port, and checks what it prints. Installs Debian's
# python3-websockets with apt-get when /usr/bin/python3 lacks it. Needs $COURIER_BIN.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
courier="${COURIER_BIN:?set COURIER_BIN to the courier binary}"
python=/usr/bin/python3
if ! "$python" -c 'import websockets' 2>/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-websockets \
    || { $sudo apt-get update && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-websockets; }
fi
work="$(mktemp -d)"
"$courier" serve --listen 127.0.0.1:0 --log warn > "$work/serve.out" 2> "$work/serve.err" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 150); do
  grep -q "listening on" "$work/serve.out" && break
  sleep 0.1
done
url="$(sed -n 's/^courier: listening on //p' "$work/serve.out")"
[ -n "$url" ] || { echo "courier serve did not start:"; cat "$work/serve.err"; exit 1; }
out="$(timeout 30 "$python" "$here/chat.py" "$url")"
echo "$out"
grep -q '^welcome s_' <<<"$out"
grep -q '^stored as .* 1$' <<<"$out"
grep -q '^received chat 1 {"text": "hello from Python"}$' <<<"$out"
echo "python example: ok"
