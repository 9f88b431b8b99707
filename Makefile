# A thin wrapper: the build lives in CMake presets, the installs in toolchains/.
SHELL := /bin/bash
.DEFAULT_GOAL := test
export NODE_PATH := /usr/share/nodejs

.PHONY: deps native wasm test test-native test-interop test-wasm bench demo clean

deps:
	@bash toolchains/install-deps.sh
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

# Receipts from a running server, checked by an independent JOSE library.
test-interop: native
	@node --test tests/interop/

test: test-native test-wasm test-interop

# The tokenizer against tiktoken, js-tiktoken and gpt-tokenizer (bench/run.mjs),
# then the server's authorize + commit pairs per second (bench/server/).
bench: native wasm
	@node bench/run.mjs
	@bash bench/server/sqlite.sh

demo:
	@echo "make demo will build everything and start 'tokenmeter serve --demo' on http://127.0.0.1:8787;"
	@echo "the server does not exist yet, so there is nothing to start."
	@exit 1

clean:
	rm -rf build/native build/wasm
