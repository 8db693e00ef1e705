# loopwatch — build, test, demo, install.
#
#   make            build build/loopwatch and build/loopwatchd
#   make deps       apt-get install what the build and the tests need (Debian 12)
#   make test       unit + integration tests (root; installs deps first)
#   make demo       run loopwatch on a small asyncio program that blocks its loop
#   make bench      benchmarks (docs/benchmarks.md)
#   make fuzz       libFuzzer targets for the parsers
#   make vmlinux    regenerate vmlinux.h from this kernel's BTF (never part of `all`)
#   make install    PREFIX=/usr/local DESTDIR= (SYSTEMDUNITDIR=$(PREFIX)/lib/systemd/system)
#   make deb        build/deb/loopwatch_VERSION_amd64.deb (debian/; dpkg-buildpackage + lintian)
#
# SANITIZE=1 builds userspace with -fsanitize=address,undefined (CI does).

CC ?= cc
CLANG ?= clang
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
PREFIX ?= /usr/local
DESTDIR ?=
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BUILD := build
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux

PKGS := libbpf libelf zlib json-c inih libsystemd capstone libdw
CFLAGS ?= -g -O2
CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 -fno-strict-aliasing \
	-D_GNU_SOURCE -DLW_VERSION='"$(VERSION)"' -I$(BUILD) -Ibpf -Idaemon -MMD -MP
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lbpf -lelf -lz -ljson-c -linih -lsystemd -lcapstone -ldw) -lm
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif

# clang -target bpf misses the multiarch include dirs (asm/...): add the host's system dirs
CLANG_BPF_SYS_INCLUDES := $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -I. -Ibpf $(CLANG_BPF_SYS_INCLUDES) \
	-Wall -Wno-unused-function

# daemon/ROOM/*.c: every room is picked up (daemon/README.md says what lives where)
ENGINE_SRCS := $(wildcard daemon/*/*.c)
DAEMON_SRCS := daemon/service/loopwatchd.c daemon/service/loopwatchd_procs.c
ENGINE_SRCS := $(filter-out $(DAEMON_SRCS),$(ENGINE_SRCS))
ENGINE_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(ENGINE_SRCS))
CLI_SRCS := $(wildcard cli/*.c)
CLI_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(CLI_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TARGET_SRCS := $(filter-out tests/targets/fake_python.c,$(wildcard tests/targets/*.c))
TARGET_BINS := $(patsubst tests/targets/%.c,$(BUILD)/targets/%,$(TARGET_SRCS))
# the same C loops built as distributions build: -O2 -g, no frame pointers (issue 17)
TARGET_BINS += $(BUILD)/targets/epoll_timer_nofp $(BUILD)/targets/uv_timer_nofp

.PHONY: all deb deps test unit unit-bins valgrind integration sid-chroot demo bench fuzz vmlinux install clean check-deps
.DELETE_ON_ERROR:
.SECONDARY:

all: $(BUILD)/loopwatch $(BUILD)/loopwatchd

$(BUILD) $(BUILD)/cli $(BUILD)/tests $(BUILD)/targets:
	@mkdir -p $@

# rebuild everything when the flags change (a sanitized test build after a plain one)
FLAGS_STAMP := $(BUILD)/.flags
$(FLAGS_STAMP): FORCE | $(BUILD)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $@
.PHONY: FORCE
FORCE:

# ---- BPF object and skeleton
$(BUILD)/loopwatch.tmp.bpf.o: bpf/loopwatch.bpf.c $(wildcard bpf/*.h) vmlinux.h | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/loopwatch.bpf.o: $(BUILD)/loopwatch.tmp.bpf.o
	$(BPFTOOL) gen object $@ $<

$(BUILD)/loopwatch.skel.h: $(BUILD)/loopwatch.bpf.o
	$(BPFTOOL) gen skeleton $< name loopwatch_bpf > $@

# ---- userspace
$(BUILD)/daemon/%.o: daemon/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/cli/%.o: cli/%.c $(FLAGS_STAMP) | $(BUILD)/cli
	$(CC) $(CFLAGS) -c $< -o $@

# objects that include the skeleton wait for it
$(BUILD)/daemon/probe/bpfobj.o $(BUILD)/daemon/probe/bpfobj_maps.o: $(BUILD)/loopwatch.skel.h

$(BUILD)/liblw.a: $(ENGINE_OBJS)
	ar rcs $@ $^

$(BUILD)/loopwatch: $(CLI_OBJS) $(BUILD)/liblw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/loopwatchd: $(patsubst %.c,$(BUILD)/%.o,$(DAEMON_SRCS)) $(BUILD)/liblw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ---- tests
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/liblw.a | $(BUILD)/tests
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/liblw.a $(LDFLAGS) $(LDLIBS) -lcmocka -ldl

$(BUILD)/targets/%: tests/targets/%.c | $(BUILD)/targets
	$(CC) -g -O1 -fno-omit-frame-pointer -Wall -o $@ $< -lpthread $(if $(findstring uv_,$*),-luv)

$(BUILD)/targets/%_nofp: tests/targets/%.c | $(BUILD)/targets
	$(CC) -g -O2 -fomit-frame-pointer -Wall -o $@ $< -lpthread $(if $(findstring uv_,$*),-luv)

# look-alike CPython builds that must be refused (tests/targets/fake_python.c)
FAKE_PYTHONS := $(BUILD)/targets/fake_py_debug $(BUILD)/targets/fake_py_314 $(BUILD)/targets/fake_py_316 \
	$(BUILD)/targets/fake_py_patched $(BUILD)/targets/fake_py_ok
$(BUILD)/targets/fake_py_debug: tests/targets/fake_python.c | $(BUILD)/targets
	$(CC) -g -O1 -DFAKE_DEBUG -o $@ $<
$(BUILD)/targets/fake_py_314: tests/targets/fake_python.c | $(BUILD)/targets
	$(CC) -g -O1 -DFAKE_VERSION=0x030e00f0 -o $@ $<
$(BUILD)/targets/fake_py_316: tests/targets/fake_python.c | $(BUILD)/targets
	$(CC) -g -O1 -DFAKE_VERSION=0x031000f0 -o $@ $<
$(BUILD)/targets/fake_py_patched: tests/targets/fake_python.c | $(BUILD)/targets
	$(CC) -g -O1 -DFAKE_CODE_SIZE=999 -o $@ $<
$(BUILD)/targets/fake_py_ok: tests/targets/fake_python.c | $(BUILD)/targets
	$(CC) -g -O1 -o $@ $<

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

unit-bins: $(UNIT_BINS)

# the unit tests under valgrind (a plain build of their own: valgrind and ASan do not mix)
valgrind:
	$(MAKE) BUILD=build/vg SANITIZE=0 unit-bins
	@set -e; for t in $(patsubst $(BUILD)/%,build/vg/%,$(UNIT_BINS)); do echo "== valgrind $$t"; \
		valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite $$t >/dev/null; done

# the Debian sid chroot with CPython 3.13/3.14/3.15 (tests/chroot/sid.sh: cached under
# /var/cache/loopwatch-test, built once); when the archive cannot be reached the sid tests skip
# and say why ($(BUILD)/sid.skip)
sid-chroot: | $(BUILD)
	@rm -f $(BUILD)/sid.skip; rc=0; sh tests/chroot/sid.sh >/dev/null 2>$(BUILD)/sid.log || rc=$$?; \
	cat $(BUILD)/sid.log >&2; \
	if [ $$rc = 77 ]; then tail -n 1 $(BUILD)/sid.log > $(BUILD)/sid.skip; \
	elif [ $$rc != 0 ]; then echo "sid chroot: failed (exit $$rc)" >&2; exit $$rc; fi

integration: all $(TARGET_BINS) $(FAKE_PYTHONS) sid-chroot
	LW_BUILD=$(BUILD) python3 tests/integration/run.py

# The interpreters `make test` runs the integration suite on: the oldest and newest pyenv
# builds, Debian's stripped 3.11, and sid's 3.14 (in a chroot, and inside new namespaces) and
# 3.15, to keep CI under 30 minutes on 2 cores. LW_PYTHONS=all runs every one found.
TEST_PYTHONS ?= debian,pyenv-3.8,pyenv-3.13,sid-3.14,sid-3.15
test: deps
	sh tests/layering.sh
	LW_PYTHONS=$${LW_PYTHONS:-$(TEST_PYTHONS)} $(MAKE) WERROR=1 SANITIZE=$(or $(SANITIZE),1) unit integration
	$(MAKE) WERROR=1 valgrind
	$(MAKE) fuzz FUZZ_SECONDS=0
	sh tests/pkg/test-deb.sh

demo: deps all
	sh tests/demo/run-demo.sh

bench: deps all $(TARGET_BINS)
	python3 tests/bench/bench.py $(BENCH_ARGS)
	python3 tests/bench/express_bench.py

# libFuzzer harnesses (tests/fuzz/, docs/fuzzing.md); FUZZ_SECONDS=N runs each, 0 replays seeds
fuzz: $(BUILD)/loopwatch.skel.h
	$(MAKE) -f tests/fuzz/Makefile $(if $(FUZZ_SECONDS),FUZZ_SECONDS=$(FUZZ_SECONDS))

# ---- dependencies (Debian 12, root)
DEB_PKGS := clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev libcmocka-dev \
	libjson-c-dev libinih-dev libsystemd-dev libcapstone-dev libdw-dev python3 python3-uvloop python3-aiohttp wrk python3-gunicorn python3-uvicorn libuv1-dev procps valgrind nodejs elfutils \
	util-linux tmux systemd chromium prometheus prometheus-node-exporter \
	dpkg-dev debhelper fakeroot lintian debootstrap
check-deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	echo "$$missing"

deps:
	@missing="$$($(MAKE) -s check-deps)"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

vmlinux:
	$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > vmlinux.h.tmp && mv vmlinux.h.tmp vmlinux.h

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0755 $(BUILD)/loopwatch $(BUILD)/loopwatchd $(DESTDIR)$(PREFIX)/sbin/
	if [ -d man ]; then install -m 0644 man/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/; \
		install -m 0644 man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5/; fi
	if [ -f dist/loopwatchd.service ]; then install -d $(DESTDIR)$(SYSTEMDUNITDIR); \
		sed 's|@SBINDIR@|$(PREFIX)/sbin|g' dist/loopwatchd.service > $(DESTDIR)$(SYSTEMDUNITDIR)/loopwatchd.service; fi
	if [ -f dist/loopwatch.conf ]; then install -d $(DESTDIR)/etc/loopwatch; \
		[ -f $(DESTDIR)/etc/loopwatch/loopwatch.conf ] || install -m 0644 dist/loopwatch.conf $(DESTDIR)/etc/loopwatch/; fi

# ---- Debian package (debian/): built in a copy of the tree under build/deb/src (so this tree's
# build/ and debian/ stay as they are; its build/debian/ objects are kept, the next build is
# incremental), the .deb, .buildinfo and .changes land in build/deb/, then lintian checks them.
DEB_OUT := build/deb
deb:
	@for t in dpkg-buildpackage dh fakeroot lintian; do command -v $$t >/dev/null || { \
		echo "make deb: $$t missing: apt-get install dpkg-dev debhelper fakeroot lintian (or make deps)" >&2; exit 1; }; done
	mkdir -p $(DEB_OUT)/src
	find $(DEB_OUT)/src -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf {} +
	rm -f $(DEB_OUT)/loopwatch_*
	tar -c --exclude=debian/loopwatch --exclude=debian/.debhelper --exclude=debian/files --exclude=debian/debhelper-build-stamp \
		--exclude=debian/loopwatch-dbgsym --exclude='debian/*.substvars' --exclude='debian/*.debhelper*' \
		-f - $(filter-out build,$(wildcard *)) | tar -x -C $(DEB_OUT)/src
	cd $(DEB_OUT)/src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -b -nc -us -uc -j$$(nproc)
	lintian --fail-on error,warning --info $(DEB_OUT)/loopwatch_*.changes
	@ls -l $(DEB_OUT)/loopwatch_*.deb

clean:
	rm -rf $(BUILD)

-include $(wildcard $(BUILD)/daemon/*/*.d $(BUILD)/cli/*.d $(BUILD)/tests/*.d)
