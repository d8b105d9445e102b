# Conveniences over CMake/CTest (the plain `cmake -S . -B build -G Ninja` flow works on its own).
#   make run    install what is missing, build, start the demo origin and Sentinel
#   make test   install what is missing, build both trees, run the whole suite
SHELL := /bin/bash
BUILD ?= build
SAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
DEMO_ORIGIN_PORT ?= 8081
SENTINEL := $(BUILD)/src/cli/sentinel
export CCACHE_DIR ?= $(CURDIR)/.ccache

.PHONY: deps configure build run test test-release test-sanitize bench docs fuzz clean

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null

build: configure
	cmake --build $(BUILD) -j $(JOBS)

run: configure
	cmake --build $(BUILD) -j $(JOBS) --target sentinel
	@scripts/run-demo $(SENTINEL) examples/demo.kdl $(DEMO_ORIGIN_PORT)

test: deps
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory test-release && $(MAKE) --no-print-directory test-sanitize; \
	rc=$$?; echo "make test: $$(( $$(date +%s) - start ))s wall, exit $$rc"; exit $$rc

test-release: build
	ctest --test-dir $(BUILD) -j $(JOBS) --output-on-failure

# Second tree (DESIGN §6): clang-14 with ASan+UBSan builds everything, the libFuzzer targets
# included: it runs the unit tests, replays every committed corpus, and runs the integration
# suite against the sanitized `sentinel` binary (which is how use-after-free bugs on the
# shutdown and WebSocket-inspection paths were found that the unit tests could not reach).
test-sanitize: deps
	@CC=clang-14 CXX=clang++-14 cmake -S . -B $(SAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSENTINEL_SANITIZE=ON -DSENTINEL_FUZZ=ON -DSENTINEL_UNIT_ONLY=OFF >/dev/null
	cmake --build $(SAN_BUILD) -j $(JOBS)
	ctest --test-dir $(SAN_BUILD) -j $(JOBS) -L 'unit|fuzz|integration' --output-on-failure

bench: build
	bench/run.sh

docs: build
	$(BUILD)/src/config/config_docgen > docs/config-reference.md

# Runs every fuzz target for FUZZ_SECONDS each, growing the corpora in place.
FUZZ_SECONDS ?= 60
fuzz: test-sanitize
	@for f in $(SAN_BUILD)/test/fuzz/fuzz_*; do \
	  name=$${f##*/fuzz_}; echo "== $$name"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) test/fuzz/corpus/$$name || exit 1; done

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
