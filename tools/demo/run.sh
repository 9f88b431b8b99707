#!/usr/bin/env bash
# `make demo` after the build: the LemonSqueezy stand-in on :8788, the
# OpenAI stand-in on :8789 (the chat's model, through the gateway) and
# `tokenmeter serve --demo` on :8787, serving the built web-demo with a dev
# user signed in (GET /demo/session). State lives in .tokenmeter-demo/ at the
# top of the checkout; delete it to start over. Ctrl-C stops both.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
standin=build/native/tools/lemonsqueezy-standin/lemonsqueezy_standin
models=build/native/tools/openai-standin/openai_standin
server=build/native/server/tokenmeter
for file in "$standin" "$models" "$server" build/web-demo/index.html; do
  [ -e "$file" ] || { echo "make demo: $file is missing (the build did not finish)" >&2; exit 1; }
done

# The server writes the webhook secret on first start; the stand-in reads the
# file each time Pay sends a webhook, so the order of the two does not matter.
# What is for sale: tools/demo/catalog.json names the variants (pro 1 and 2,
# team 3, the credit pack 4), and the stand-in sells the same ones at these
# prices. tests/support/demo_billing.mjs starts the test servers alike.
"$standin" --listen 127.0.0.1:8788 \
  --webhook-url http://127.0.0.1:8787/v1/webhooks/lemonsqueezy \
  --webhook-secret-file .tokenmeter-demo/lemonsqueezy-webhook-secret \
  --store-id 1 --variant-id 1 --pack-variants 4 \
  --variant-price 1=1900 --variant-price 2=19000 --variant-price 3=4900 --variant-price 4=499 &
standin_pid=$!
# `serve --demo` without upstreams sends every model to http://127.0.0.1:8789/v1.
"$models" --listen 127.0.0.1:8789 --chunk-delay-ms 40 &
models_pid=$!
TOKENMETER_CATALOG_FILE=tools/demo/catalog.json \
  "$server" serve --demo --listen 127.0.0.1:8787 --web-root build/web-demo &
server_pid=$!
# However this script ends (Ctrl-C, kill, an error), both go with it.
trap 'kill "$server_pid" "$standin_pid" "$models_pid" 2>/dev/null || true' EXIT INT TERM
echo "tokenmeter demo: open http://127.0.0.1:8787 (Ctrl-C stops)"
wait "$server_pid"
