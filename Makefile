# Thin wrapper over CMake. The two commands of the quick start are `make demo` and `make check`.
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
BUILD  ?= build
PREFIX ?= /usr/local
CMAKE_FLAGS ?=

.PHONY: all deps deps-bench build demo check check-sanitize check-asan check-tsan check-condvar \
        bench install clean

all: build

deps:
	@scripts/install-deps

deps-bench:
	@scripts/install-deps --bench

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

bench: deps-bench
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DBATON_BUILD_BENCH=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	$(BUILD)/cli/baton bench pool $(BENCH_ARGS)
	$(BUILD)/cli/baton bench queue $(BENCH_ARGS)
	$(BUILD)/cli/baton bench store $(BENCH_ARGS)
	$(BUILD)/cli/baton bench graph $(BENCH_ARGS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-condvar
