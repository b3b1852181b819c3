# Thin wrapper over CMake (DESIGN.md §1). The two commands of the quick start:
#   make run   installs what is missing, builds, imports the demo data and serves
#   make test  installs what is missing, builds and runs every test
#   make package  builds the Debian package (docs/packaging.md)
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
CONFIG ?= config/slmhub.example.properties
SLMHUB := $(BUILD_DIR)/host/slmhub
# Extra cmake arguments for a new build directory, e.g. -DSLMHUB_BUILD_TESTS=OFF (the container).
CMAKE_ARGS ?=
# make fuzz (docs/fuzzing.md): a clang build of the libFuzzer targets in its own directory,
# each target run FUZZ_SECONDS; built one job at a time (FUZZ_JOBS) beside other work.
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
FUZZ_TARGETS ?= json dataset cron mime mime_header mail_address html_text sn_webhook sn_record \
	sn_link http mustache

# Debian packages the build, the tests and the benchmarks need.
DEPS := cmake ninja-build g++ ccache pkg-config clang-format clang-tidy \
	libpoco-dev libboost-dev libboost-filesystem-dev libssl-dev nlohmann-json3-dev \
	libhowardhinnant-date-dev libsimdjson-dev libgtest-dev libgmock-dev tzdata \
	postgresql-15 sqlite3 curl wrk ca-certificates openssl chromium \
	libgmime-3.0-dev swaks python3-aiosmtpd dovecot-pop3d dovecot-imapd libcurl4-openssl-dev \
	libkainjow-mustache-dev python3 python3-icalendar libxml2-utils clang \
	dpkg-dev file lintian

# (ccache keys on paths relative to the checkout: CMakeLists.txt sets that in its launcher.)
# The default 5 GB holds one build; the sanitizer build of .ci/run is a second one.
export CCACHE_MAXSIZE ?= 20G

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps configure build run test test-cluster package test-asan test-tsan bench bench-availability bench-mail bench-servicenow bench-cluster bench-alerts bench-billing fuzz format tidy clean
all: build

# Idempotent: installs only what dpkg does not already have. Dovecot is only for the tests,
# which run their own on 127.0.0.1: the system service the package starts (listening on
# every interface) is stopped and disabled when this target installed it.
deps:
	@missing="$$(for p in $(DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing && \
	  if echo "$$missing" | grep -q dovecot && [ -d /run/systemd/system ]; then \
	    $(SUDO) systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true; \
	  fi; \
	else echo "all build dependencies are installed"; fi

configure: deps
	@[ -f $(BUILD_DIR)/build.ninja ] || cmake -S . -B $(BUILD_DIR) -G Ninja \
	  -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(SLMHUB) import config/demo-dataset.json --config $(CONFIG)
	exec $(SLMHUB) serve --config $(CONFIG)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

# The failover test (three instances on one PostgreSQL, one killed, one paused; docs/
# OPERATIONS.md) five times in a row; `make test` runs it once. About a minute and a half each.
test-cluster: build
	cd $(BUILD_DIR) && SLMHUB_SHARED_DIR=$(CURDIR)/../shared tests/integration_tests \
	  --gtest_filter='Failover.*' --gtest_repeat=5 --gtest_break_on_failure

# The .deb of this build, $(BUILD_DIR)/slmhub_<version>_<arch>.deb (docs/packaging.md): CPack,
# with dpkg-shlibdeps for the library dependencies. As root, `make test` installs, checks and
# purges it (ctest entry package_tests); tests/packaging/deb_test.sh does that to any .deb.
package: build
	@deb="$$(packaging/cpack-deb.sh $(BUILD_DIR))" && echo "package: $$deb"

# The whole suite again under AddressSanitizer + UBSan, and under ThreadSanitizer, each in
# its own build directory (docs/SECURITY.md). Any report fails the test that caused it: a test
# binary exits non-zero, and a report in the stderr of a server a test started (sanitized too)
# fails that test when ServerProcess stops it.
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
SANITIZER_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	TSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/tsan.supp:halt_on_error=1:second_deadlock_stack=1
# -O1 and line tables only: half the compile time of -O2 -g, and reports still name the line.
SANITIZER_FLAGS := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1"
test-asan: deps
	@[ -f $(ASAN_DIR)/build.ninja ] || cmake -S . -B $(ASAN_DIR) -G Ninja \
	  $(SANITIZER_FLAGS) -DSLMHUB_SANITIZE=address
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && $(SANITIZER_ENV) ctest --output-on-failure -j $(JOBS) --timeout 1800
test-tsan: deps
	@[ -f $(TSAN_DIR)/build.ninja ] || cmake -S . -B $(TSAN_DIR) -G Ninja \
	  $(SANITIZER_FLAGS) -DSLMHUB_SANITIZE=thread
	cmake --build $(TSAN_DIR) -j $(JOBS)
	cd $(TSAN_DIR) && $(SANITIZER_ENV) ctest --output-on-failure -j $(JOBS) --timeout 1800

bench: build
	bench/run.sh $(BUILD_DIR)

# The availability scale benchmark (engine vs bare sweep vs PostgreSQL 15, bench/RESULTS.md);
# builds only its own targets. A few minutes and ~2 GiB of temp files.
bench-availability: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target bench_availability_generate bench_availability bench_sweep
	bench/availability/run.sh $(BUILD_DIR)

# The mail benchmark (LMTP into committed tickets beside parse_mail, bare GMime, Python's email
# and Request Tracker's rt-mailgate when request-tracker5 and rt5-db-sqlite are installed;
# bench/RESULTS.md); builds only its own targets. A few minutes, most of them Request Tracker.
bench-mail: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target slmhub email_intake bench_mail_parse bench_mail_lmtp
	bench/mail/run.sh $(BUILD_DIR)

# One vs three instances on one PostgreSQL: webhook ingest and event dispatch (docs/
# OPERATIONS.md, bench/RESULTS.md [operations]). A few minutes.
bench-cluster: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target slmhub servicenow
	bench/cluster/run.sh $(BUILD_DIR)

# The ServiceNow benchmark (webhook ingest beside the bare Poco handler, a 100,000-record sweep
# against the simulator with 20 ms latency; bench/RESULTS.md); builds only its own targets.
bench-servicenow: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target slmhub servicenow bench_bare_poco
	bench/servicenow/run.sh $(BUILD_DIR)

# The Tech Alerts benchmark (one alert to 10,000 recipients rendered and queued, then delivered
# to a local SMTP server beside smtplib's rate; bench/RESULTS.md); builds only its own targets.
bench-alerts: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target slmhub tech_alerts
	bench/alerts/run.sh $(BUILD_DIR)

# The billing benchmark (10,000 accounts × 12 lines: `slmhub export invoices` finalising and
# writing CSV + 10,000 UBL files, then re-exporting, beside Python writing the same files with
# fsync; peak RSS; bench/RESULTS.md); builds only its own targets. About a minute.
bench-billing: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target slmhub billing_export
	bench/billing/run.sh $(BUILD_DIR)

# Every libFuzzer target for FUZZ_SECONDS; fails naming the input of any crash, sanitizer
# report, broken check or timeout. New coverage goes to $(FUZZ_DIR)/fuzz/corpus, never to the
# committed seeds in tests/fuzz/corpus.
fuzz: deps
	@[ -f $(FUZZ_DIR)/build.ninja ] || CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLMHUB_FUZZ=ON -DSLMHUB_BUILD_TESTS=OFF
	nice -n 10 cmake --build $(FUZZ_DIR) -j $(FUZZ_JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

tidy: configure
	git ls-files 'sdk/*.cpp' 'host/*.cpp' 'plugins/*.cpp' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	rm -rf $(BUILD_DIR)
