# sipsd top-level Makefile: thin wrappers around CMake/CTest.
#   make check     install missing packages, build, run every test
#   make demo      the trapezoid demo
#   make sanitize  the whole suite under ASan+UBSan
#   make valgrind  the integration tests with every daemon under valgrind memcheck
#   make fuzz      run every libFuzzer target for FUZZ_SECONDS each (clang)
#   make bench     parser benchmark against libosip2
#   make compare   sipsd vs Kamailio over TLS (bench/compare), medians and ratios
#   make install   PREFIX=/usr/local DESTDIR= (binaries, man pages, unit, example config)
BUILD ?= build
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 30
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
CMAKE_FLAGS ?=
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps build check demo sanitize valgrind fuzz bench compare clean format install

all: build

deps:
	scripts/install-deps.sh build test bench

build: deps
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIPSD_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

check: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

sanitize: deps
	cmake -S . -B $(BUILD)-asan $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DSIPSD_WERROR=ON -DSIPSD_SANITIZE=ON -DSIPSD_BENCH=OFF
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# Valgrind slows the daemons twenty- to fiftyfold: one test at a time, and
# every wait in the scripts grows tenfold (tests/integration/lib/common.sh).
valgrind: build
	scripts/install-deps.sh valgrind
	scripts/valgrind-tests.sh $(BUILD) $(TESTS)

fuzz: deps
	scripts/install-deps.sh fuzz
	CC=clang cmake -S . -B $(BUILD)-fuzz $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIPSD_FUZZ=ON -DSIPSD_BENCH=OFF
	cmake --build $(BUILD)-fuzz -j $(JOBS)
	scripts/run-fuzzers.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

bench: build
	$(BUILD)/bench_parse

compare: build
	bench/compare --build $(BUILD)

demo: build
	scripts/install-deps.sh demo
	scripts/demo.sh $(BUILD)

install:
	@test -x $(BUILD)/sipsd -a -x $(BUILD)/sipsctl || { echo "make install: run make build first" >&2; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/doc/sipsd
	install -m 755 $(BUILD)/sipsd $(DESTDIR)$(PREFIX)/sbin/sipsd
	install -m 755 $(BUILD)/sipsctl $(DESTDIR)$(PREFIX)/bin/sipsctl
	install -m 644 docs/man/sipsctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 docs/man/sipsd.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 docs/man/sipsd.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	sed 's|/usr/local/sbin|$(PREFIX)/sbin|g' packaging/sipsd.service \
		>$(DESTDIR)$(PREFIX)/lib/systemd/system/sipsd.service
	install -m 644 packaging/sipsd.conf.example $(DESTDIR)$(PREFIX)/share/doc/sipsd/

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
