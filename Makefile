# Thin wrapper over CMake. The two commands of the quick start are `make demo` and `make check`.
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
BUILD  ?= build
PREFIX ?= /usr/local
CMAKE_FLAGS ?=

.PHONY: all deps deps-bench deps-fuzz build demo check check-sanitize check-asan check-tsan \
        check-condvar bench fuzz install clean

all: build

deps:
	@scripts/install-deps

deps-bench:
	@scripts/install-deps --bench

deps-fuzz:
	@scripts/install-deps --fuzz

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/cli/baton demo

check: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

check-sanitize: check-asan check-tsan

check-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBATON_ASAN=ON -DBATON_UBSAN=ON
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    ctest --test-dir build-asan --output-on-failure -j $(JOBS)

check-tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBATON_TSAN=ON
	cmake --build build-tsan -j $(JOBS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	    ctest --test-dir build-tsan --output-on-failure -j $(JOBS)

# The whole suite on the portable parking path (condition variables instead of futexes).
check-condvar: deps
	cmake -S . -B build-condvar -DCMAKE_BUILD_TYPE=Release -DBATON_PARKING_CONDVAR=ON
	cmake --build build-condvar -j $(JOBS)
	ctest --test-dir build-condvar --output-on-failure -j $(JOBS)

# baton-bench (bench/driver/, never installed) runs every suite against its peers.
BENCH_SUITES = pool queue store graph space engine
bench: deps-bench
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DBATON_BUILD_BENCH=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	for suite in $(BENCH_SUITES); do \
	    $(BUILD)/bench/baton-bench $$suite $(BENCH_ARGS) || exit 1; \
	done

# The libFuzzer targets (clang, ASan), each for FUZZ_SECONDS; what they find stays in
# build-fuzz/corpus/<target> for the next run. A crash leaves its input in the working directory.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = fuzz_deque fuzz_space_text fuzz_space_log
fuzz: deps-fuzz
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DBATON_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS) --target $(FUZZ_TARGETS)
	for t in $(FUZZ_TARGETS); do \
	    mkdir -p build-fuzz/corpus/$$t && \
	    build-fuzz/tests/$$t -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/$$t || exit 1; \
	done

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-condvar build-fuzz
