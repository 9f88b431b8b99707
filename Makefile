# A thin wrapper: the build lives in CMake presets, the installs in toolchains/.
SHELL := /bin/bash
.DEFAULT_GOAL := test
export NODE_PATH := /usr/share/nodejs

.PHONY: deps native wasm wasm-size react web-demo test test-native test-interop test-wasm test-packages test-hook test-e2e bench fuzz demo clean

deps:
	@bash toolchains/install-deps.sh
	@bash toolchains/cpp-httplib.sh
	@bash toolchains/libsodium-wasm.sh
	@bash toolchains/npm-install.sh

native: deps
	@cmake --preset native >/dev/null
	@cmake --build --preset native

wasm: deps
	@cmake --preset wasm >/dev/null
	@cmake --build --preset wasm

test-native: native
	@ctest --preset native

test-wasm: wasm
	@node --test tests/wasm/

# Gzipped download of @tokenmeter/wasm without tokenizer data (budget 200 KB).
wasm-size: wasm
	@node tests/wasm/size.mjs

# @tokenmeter/react (react/) into build/react/package: ESM and .d.ts by tsc,
# beside build/wasm/package; the demo and the hook's tests import both by name.
react:
	@bash toolchains/npm-install.sh
	@npx --no-install tsc -p react/tsconfig.json
	@cp react/package.json build/react/package/

# Both packages as npm and TypeScript see them (publint, attw).
test-packages: wasm react
	@node --test tests/packages/

# The demo app (React + Vite) into build/web-demo, served by `tokenmeter serve --web-root`.
web-demo: wasm react
	@npx --no-install tsc -p web-demo/tsconfig.json
	@npx --no-install vite build --config web-demo/vite.config.ts --logLevel warn

# @tokenmeter/react: its client against a real `tokenmeter serve`, renders and a server render (Vitest).
test-hook: native wasm react
	@npx --no-install vitest run --config web-demo/vitest.config.ts

# The demo in Debian's Chromium (playwright-core); screenshots in build/e2e/.
test-e2e: native web-demo
	@node --test tests/e2e/

# Receipts from a running server, checked by an independent JOSE library.
test-interop: native
	@node --test tests/interop/

test: test-native test-wasm test-packages test-interop test-hook test-e2e

# The tokenizer against tiktoken, js-tiktoken and gpt-tokenizer (bench/run.mjs),
# then the server's authorize + commit pairs per second on SQLite and on
# PostgreSQL beside bare pgbench, then 500 clients arriving at once, against
# this server and the one before the epoll edge (bench/server/; the old one is
# built once into build/baseline/).
bench: native wasm web-demo
	@node bench/run.mjs
	@node bench/web/first_count.mjs
	@bash bench/server/sqlite.sh
	@bash bench/server/postgres.sh
	@bash bench/server/burst.sh
	@node bench/gateway/gateway.mjs

# Every parser at the edge under libFuzzer with ASan and UBSan (clang 14, in
# build/fuzz): FUZZ_SECONDS per target (default 60) on a copy of its corpus
# in tests/fuzz/corpus/; one line per target; fails on a crash. `make test`
# replays the same corpora without clang.
fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz
	@bash tests/fuzz/run.sh

# Builds everything and serves the demo on http://127.0.0.1:8787 with a dev
# user signed in; Upgrade pays through the local LemonSqueezy stand-in.
demo: native web-demo
	@bash tools/demo/run.sh

clean:
	rm -rf build/native build/wasm build/react build/web-demo build/e2e build/fuzz
