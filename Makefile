# sweepd — plain Makefile. Build outputs go to $(BUILD) (default build/).
#
#   make            build build/sweepd, build/sweepctl, build/sweep-worker
#                   (installs nothing; names what is missing: `make deps`)
#   make deps       install the missing build-and-run packages (etc/install-deps)
#   make check      install missing test deps (etc/install-deps --check), build
#                   (-Werror), run unit tests, the layout and format checks
#                   (tests/layout/), integration tests, then the unit tests
#                   again under ASan+UBSan (leaks fail)
#   make bench      benchmarks against PyTorch / Pillow (tests/bench/; installs
#                   etc/install-deps --bench)
#   make demo       a real search end to end on Fashion-MNIST (see README.md;
#                   installs the build-and-run packages only)
#   make fuzz       libFuzzer harnesses, FUZZ_SECONDS each (tests/fuzz/; --fuzz)
#   make format     clang-format every C source and header (--format)
#   make install PREFIX=/usr/local   binaries, sql/, example config, export-weights.py
#                   and the systemd unit (ExecStart under PREFIX); see README.md
#
# Sources are found by directory: every .c under common/, worker/ and daemon/ goes into
# $(BUILD)/libsweep.a except the entry points (worker/main.c,
# daemon/main.c, daemon/ctl/main.c). Each tests/unit/test_*.c is one
# cmocka binary linked against libsweep.a; tests/unit/util_*.c are linked into
# every unit test. Header dependencies are generated with -MMD.

BUILD   ?= build
PREFIX  ?= /usr/local
CC      ?= cc
NPROC   := $(shell nproc 2>/dev/null || echo 2)
PKGS    := libuv sqlite3 jansson openblas libturbojpeg zlib

OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra
ifeq ($(WERROR),1)
WARN    += -Werror
endif
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(shell pkg-config --libs cmocka 2>/dev/null)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude $(PKG_CFLAGS) -MMD -MP \
             -DSWEEP_SRCDIR='"$(CURDIR)"'
LIBS       = $(PKG_LIBS) -lm -lpthread

MAINS      := worker/main.c daemon/main.c daemon/ctl/main.c
LIB_SRC    := $(filter-out $(MAINS),$(sort $(shell find common worker daemon -name '*.c')))
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UTIL_SRC   := $(wildcard tests/unit/util_*.c)
UTIL_OBJ   := $(UTIL_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
AUX_SRC    := $(wildcard tests/aux/*.c)
AUX_BIN    := $(AUX_SRC:tests/aux/%.c=$(BUILD)/tests/%)
BINS       := $(BUILD)/sweepd $(BUILD)/sweepctl $(BUILD)/sweep-worker

.PHONY: all deps need-libs need-cmocka check unit-tests test-bins bench demo demo-archs fuzz clean format install
.DEFAULT_GOAL := all

all: $(BINS)

# Levels of etc/install-deps: none = build and run (make, make demo),
# --check = tests, --bench, --fuzz, --format. Plain `make` installs nothing:
# need-libs only says what is missing and how to get it.
deps:
	@etc/install-deps

need-libs:
	@pkg-config --exists $(PKGS) 2>/dev/null || { \
	    echo "make: build dependencies missing (pkg-config $(PKGS));" \
	         "install them with 'make deps' (etc/install-deps)" >&2; exit 1; }
need-cmocka:
	@pkg-config --exists cmocka 2>/dev/null || { \
	    echo "make: cmocka missing for the unit tests; install it with" \
	         "'etc/install-deps --check' (make check does)" >&2; exit 1; }

$(BUILD)/obj/%.o: %.c | need-libs
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c | need-libs need-cmocka
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -c $< -o $@

$(BUILD)/libsweep.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/sweep-worker: $(BUILD)/obj/worker/main.o $(BUILD)/libsweep.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/sweepd: $(BUILD)/obj/daemon/main.o $(BUILD)/libsweep.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/sweepctl: $(BUILD)/obj/daemon/ctl/main.o $(BUILD)/libsweep.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(UTIL_OBJ) $(BUILD)/libsweep.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(LINK_IN) $(CMOCKA_LIBS) $(LIBS)

$(BUILD)/tests/%: tests/aux/%.c $(BUILD)/libsweep.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(LINK_IN) $(LIBS)

# A test binary's inputs, objects (extra ones from rules below) before the library.
LINK_IN = $(filter-out %.a,$^) $(filter %.a,$^)
# The synthetic objectives of the TPE test and benchmark (tests/bench/tpe_objectives.c).
$(BUILD)/tests/test_suggest $(BUILD)/tests/tpe_driver: $(BUILD)/obj/tests/bench/tpe_objectives.o

test-bins: $(BINS) $(UNIT_BIN) $(AUX_BIN)

# The full test run. Each step's results are appended to $(BUILD)/results;
# tests/run-tests prints the grand total as the last line.
check:
	@etc/install-deps --check
	@rm -rf build/results && mkdir -p build
	@$(MAKE) --no-print-directory -j$(NPROC) WERROR=1 test-bins
	@$(MAKE) --no-print-directory -j$(NPROC) BUILD=build/san SAN=1 WERROR=1 OPT=-O1 test-bins
	@tests/run-tests

unit-tests: test-bins
	@tests/run-tests --unit-only

bench:
	@etc/install-deps --bench
	@$(MAKE) --no-print-directory all $(AUX_BIN)
	@tests/bench/run-all

fuzz:
	@etc/install-deps --fuzz
	@tests/fuzz/run $(FUZZ_SECONDS)

demo: deps
	@$(MAKE) --no-print-directory all
	@etc/demo

# The demo, then a search over the architecture among three narrow families.
demo-archs: deps
	@$(MAKE) --no-print-directory all
	@DEMO_ARCHS="resnet18 vgg11_bn inception_v3" etc/demo

format:
	@etc/install-deps --format
	clang-format -i $(shell find common worker daemon include tests -name '*.[ch]' -not -path 'tests/fuzz/corpus/*')

# What a service needs, under PREFIX (DESTDIR is prepended to every path, for
# packaging, but not written into the unit): the binaries; sql/ where sweepd
# looks for it (<prefix>/share/sweepd/sql, found from the binary's folder);
# the example config, export-weights.py and the systemd unit, whose ExecStart
# names $(PREFIX)/bin/sweepd (etc/sweepd.service says /usr/local).
SHARE := $(PREFIX)/share/sweepd
UNIT  := $(PREFIX)/lib/systemd/system/sweepd.service
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SHARE)/sql/migrations \
	    $(DESTDIR)$(dir $(UNIT))
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 sql/*.sql $(DESTDIR)$(SHARE)/sql/
	install -m 0644 $(wildcard sql/migrations/*.sql) $(DESTDIR)$(SHARE)/sql/migrations/
	install -m 0644 etc/sweepd.conf $(DESTDIR)$(SHARE)/sweepd.conf
	install -m 0755 etc/export-weights.py $(DESTDIR)$(SHARE)/export-weights.py
	sed -e 's|^ExecStart=/usr/local/bin/sweepd |ExecStart=$(PREFIX)/bin/sweepd |' \
	    etc/sweepd.service >$(DESTDIR)$(UNIT).tmp
	grep -q '^ExecStart=$(PREFIX)/bin/sweepd ' $(DESTDIR)$(UNIT).tmp
	chmod 0644 $(DESTDIR)$(UNIT).tmp && mv $(DESTDIR)$(UNIT).tmp $(DESTDIR)$(UNIT)
	@echo "installed under $(DESTDIR)$(PREFIX); unit $(DESTDIR)$(UNIT)"

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
