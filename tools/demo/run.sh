#!/usr/bin/env bash
# `make demo` after the build: the LemonSqueezy stand-in on :8788 and
# `tokenmeter serve --demo` on :8787, serving the built web-demo with a dev
# user signed in (GET /demo/session). State lives in .tokenmeter-demo/ at the
# top of the checkout; delete it to start over. Ctrl-C stops both.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
standin=build/native/tools/lemonsqueezy-standin/lemonsqueezy_standin
server=build/native/server/tokenmeter
for file in "$standin" "$server" build/web-demo/index.html; do
  [ -e "$file" ] || { echo "make demo: $file is missing (the build did not finish)" >&2; exit 1; }
done

# The server writes the webhook secret on first start; the stand-in reads the
# file each time Pay sends a webhook, so the order of the two does not matter.
"$standin" --listen 127.0.0.1:8788 \
  --webhook-url http://127.0.0.1:8787/v1/webhooks/lemonsqueezy \
  --webhook-secret-file .tokenmeter-demo/lemonsqueezy-webhook-secret \
  --store-id 1 --variant-id 1 &
standin_pid=$!
"$server" serve --demo --listen 127.0.0.1:8787 --web-root build/web-demo &
server_pid=$!
# However this script ends (Ctrl-C, kill, an error), both go with it.
trap 'kill "$server_pid" "$standin_pid" 2>/dev/null || true' EXIT INT TERM
echo "tokenmeter demo: open http://127.0.0.1:8787 (Ctrl-C stops)"
wait "$server_pid"
