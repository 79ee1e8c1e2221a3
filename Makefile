# cray: build, test, install.
#
#   make            build everything into build/
#   make run        install missing Debian packages, build, run an example with crayrun
#   make test       install missing Debian packages, build, run every C test and spec
#   make bench      build, run the benchmarks: "<metric> <median> <unit>" lines on stdout
#   make install    PREFIX=/usr/local DESTDIR= (BINDIR, LUA_CMOD_DIR: see below)
#   make SAN=address|undefined|thread ...   everything instrumented, in build/san-$(SAN)/
#   make fuzz       install clang, build the libFuzzer targets of spec/fuzz/ in build/fuzz/
#   make fuzz-run FUZZ_SECONDS=60   run each of them that long
#   make soak SOAK_SECONDS=60 [SAN=...]   spec/soak/soak.lua's mixed load on this build
#
# Products: crayrun, libcray.a, libcray.so (versioned, with its soname's symlinks), the
# Lua module cray.so, cray.pc, and where mpicc exists the MPI transport cray_mpi.so, which
# crayrun loads only under an MPI launcher (docs/cluster.md).

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
# Where the Lua module cray.so goes (LuaRocks sets it to the rock's LIBDIR).
LUA_CMOD_DIR ?= $(PREFIX)/lib/lua/5.1
CC ?= cc
LUAJIT ?= luajit
PKGS := luajit libuv lmdb
VERSION := $(shell sed -n 's/.*CRAY_VERSION_STRING "\(.*\)"/\1/p' runtime/cray.h)
# The soname names the ABI: the major version, and while it is 0 the minor too (0.x
# releases may change the ABI).
VMAJOR := $(word 1,$(subst ., ,$(VERSION)))
SONAME := libcray.so.$(if $(filter 0,$(VMAJOR)),0.$(word 2,$(subst ., ,$(VERSION))),$(VMAJOR))

ifeq ($(SAN),)
  B := build
  OPT ?= -O2
  SANFLAGS :=
else ifeq ($(SAN),address)
  B := build/san-address
  OPT ?= -O1
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  SANLIB := asan
else ifeq ($(SAN),undefined)
  B := build/san-undefined
  OPT ?= -O1
  SANFLAGS := -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  SANLIB := ubsan
else ifeq ($(SAN),thread)
  B := build/san-thread
  OPT ?= -O1
  # LuaJIT raises errors by unwinding through C frames: -fexceptions gives them the
  # cleanups that run TSan's function-exit hook, or its shadow stack overflows.
  SANFLAGS := -fsanitize=thread -fexceptions
  SANLIB := tsan
else ifeq ($(SAN),fuzz)
  # make fuzz's build: clang, libFuzzer's coverage hooks, AddressSanitizer and UBSan.
  B := build/fuzz
  OPT ?= -O1
  CC := clang
  SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer
  SANLIB := asan
else
  $(error SAN must be address, undefined or thread)
endif

WERROR := $(if $(filter true,$(CI)),-Werror,)

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS ?= $(OPT) -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -fPIC -fvisibility=hidden \
             -MMD -MP $(SANFLAGS) $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS ?=
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
SYSLIBS = -lpthread -lm -ldl
# The Lua module takes Lua's symbols from the program that loads it.
MODULE_LIBS = $(shell pkg-config --libs libuv lmdb 2>/dev/null) $(SYSLIBS)

RUNTIME_SRC := $(wildcard runtime/*.c)
BINDINGS_SRC := $(filter-out bindings/crayrun.c,$(wildcard bindings/*.c))
LUA_SRC := $(wildcard lua/*.lua)
# lua/cray.lua is module "cray"; lua/NAME.lua is "cray.NAME".
lua_name = $(if $(filter cray,$(1)),cray,cray.$(1))
LUA_GEN := $(patsubst lua/%.lua,$(B)/gen/lua_%.c,$(LUA_SRC)) $(B)/gen/lua_modules.c
LIB_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(RUNTIME_SRC) $(BINDINGS_SRC)) \
           $(patsubst %.c,%.o,$(LUA_GEN))
CTEST_SRC := $(wildcard spec/c/test_*.c)
CTESTS := $(patsubst spec/c/%.c,$(B)/tests/%,$(CTEST_SRC))
EXAMPLE_C := $(wildcard examples/*.c examples/*/*.c)
EXAMPLES := $(patsubst examples/%.c,$(B)/examples/%,$(EXAMPLE_C))
# Fuzz targets: spec/fuzz/NAME.c, its kept inputs in spec/fuzz/NAME/. Every build links
# each with replay.c, which spec/run runs on those inputs; make fuzz links it with libFuzzer.
FUZZ_NAMES := $(filter-out replay,$(basename $(notdir $(wildcard spec/fuzz/*.c))))
REPLAYS := $(patsubst %,$(B)/replay/%,$(FUZZ_NAMES))

MPICC ?= mpicc
HAVE_MPI := $(shell command -v $(MPICC) >/dev/null 2>&1 && echo yes)
TRANSPORT := $(if $(HAVE_MPI),$(B)/cray_mpi.so)
MPI_CEILING := $(if $(HAVE_MPI),$(B)/bench/mpi_ceiling)

PRODUCTS := $(B)/crayrun $(B)/libcray.a $(B)/libcray.so.$(VERSION) $(B)/libcray.so $(B)/cray.so \
            $(B)/cray.pc $(TRANSPORT)

.PHONY: all run test bench bench-peers install install-lua clean deps fuzz fuzzers fuzz-run soak FORCE
.SECONDARY:
all: $(PRODUCTS) $(CTESTS) $(EXAMPLES) $(REPLAYS) $(B)/bench/ceiling $(B)/bench/io_echo \
     $(MPI_CEILING)

# Everything built depends on $(FLAGS), a stamp of the compiler and flags in use (CC, CI,
# CFLAGS, OPT, SAN, LDFLAGS ...), rewritten only when they change: a build with other
# flags rebuilds what they affect, an unchanged one rebuilds nothing.
FLAGS := $(B)/flags
FLAGS_NOW := $(subst ','\'',$(CC) $(ALL_CFLAGS) | $(ALL_LDFLAGS) | $(LUAJIT))
$(FLAGS): FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' '$(FLAGS_NOW)' | cmp -s - $@ || printf '%s\n' '$(FLAGS_NOW)' > $@
# A link rule's inputs: its prerequisites but the stamp.
linked = $(filter-out $(FLAGS),$^)

$(B)/obj/%.o: %.c $(FLAGS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/gen/%.o: $(B)/gen/%.c $(FLAGS)
	$(CC) $(ALL_CFLAGS) -Ibindings -c $< -o $@

lua_sym = luaJIT_BC_$(subst .,_,$(call lua_name,$(1)))
# Each module's chunk is named "[cray.NAME]" (bindings/lstate.h, CRAY__CHUNK_PREFIX), so
# that messages can point past cray's own frames at the user's code.
lua_bc = local f = assert(io.open("$(1)")); local code = f:read("*a"); f:close(); \
  require("jit.bcsave").start("-g", "-n", "$(2)", assert(loadstring(code, "=[$(2)]")), "$(3)")
$(B)/gen/lua_%.c: lua/%.lua $(FLAGS) Makefile
	@mkdir -p $(dir $@)
	$(LUAJIT) -e '$(call lua_bc,$<,$(call lua_name,$*),$@)'
	@echo 'const unsigned long $(call lua_sym,$*)_size = sizeof $(call lua_sym,$*);' >> $@

$(B)/gen/lua_modules.c: $(LUA_SRC)
	@mkdir -p $(dir $@)
	@{ echo '#include "lua_modules.h"'; \
	  $(foreach f,$(LUA_SRC),echo 'extern const unsigned char $(call lua_sym,$(basename $(notdir $f)))[];'; \
	    echo 'extern const unsigned long $(call lua_sym,$(basename $(notdir $f)))_size;';) \
	  echo 'const cray__lua_module cray__lua_modules[] = {'; \
	  $(foreach f,$(LUA_SRC),echo '  {"$(call lua_name,$(basename $(notdir $f)))", $(call lua_sym,$(basename $(notdir $f))), &$(call lua_sym,$(basename $(notdir $f)))_size},';) \
	  echo '  {0, 0, 0}};'; } > $@

$(B)/libcray.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $(linked)

$(B)/libcray.so.$(VERSION): $(LIB_OBJ) $(FLAGS)
	$(CC) -shared -Wl,-soname,$(SONAME) $(ALL_LDFLAGS) -o $@ $(linked) $(PKG_LIBS) $(SYSLIBS)

$(B)/libcray.so: $(B)/libcray.so.$(VERSION)
	ln -sf libcray.so.$(VERSION) $(B)/$(SONAME)
	ln -sf $(SONAME) $@

$(B)/cray.so: $(LIB_OBJ) $(FLAGS)
	$(CC) -shared $(ALL_LDFLAGS) -o $@ $(linked) $(MODULE_LIBS)

$(B)/crayrun: $(B)/obj/bindings/crayrun.o $(B)/libcray.a $(FLAGS)
	$(CC) $(ALL_LDFLAGS) -o $@ $(linked) $(PKG_LIBS) $(SYSLIBS)

# The transport links MPI and nothing of cray's: the runtime stays free of MPI.
$(B)/cray_mpi.so: transport/mpi.c runtime/transport.h $(FLAGS)
	@mkdir -p $(dir $@)
	$(MPICC) $(ALL_CFLAGS) -shared -o $@ $< $(ALL_LDFLAGS)

$(B)/bench/mpi_ceiling: bench/mpi_ceiling.c $(FLAGS)
	@mkdir -p $(dir $@)
	$(MPICC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS)

$(B)/tests/%: spec/c/%.c $(B)/libcray.a $(FLAGS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags msgpack) -o $@ $< \
	  $(ALL_LDFLAGS) $(B)/libcray.a $(PKG_LIBS) $(shell pkg-config --libs msgpack) $(SYSLIBS)

$(B)/replay/%: spec/fuzz/%.c spec/fuzz/replay.c $(B)/libcray.a $(FLAGS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< spec/fuzz/replay.c $(ALL_LDFLAGS) $(B)/libcray.a $(PKG_LIBS) \
	  $(SYSLIBS)

$(B)/fuzzers/%: spec/fuzz/%.c $(B)/libcray.a $(FLAGS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS) -fsanitize=fuzzer $(B)/libcray.a $(PKG_LIBS) \
	  $(SYSLIBS)

# Examples see cray.h alone, as an installed program does (runtime/ also holds headers
# named like system ones, such as sched.h).
$(B)/include/cray.h: runtime/cray.h
	@mkdir -p $(dir $@)
	cp $< $@

$(B)/examples/%: examples/%.c $(B)/libcray.a $(B)/include/cray.h $(FLAGS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -I$(B)/include $(shell pkg-config --cflags msgpack) -o $@ $< $(ALL_LDFLAGS) \
	  $(B)/libcray.a $(PKG_LIBS) $(shell pkg-config --libs msgpack) $(SYSLIBS)

$(B)/bench/ceiling: bench/ceiling.c $(FLAGS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS) -lpthread

$(B)/bench/io_echo: bench/io_echo.c $(FLAGS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS) $(PKG_LIBS) -lpthread

$(B)/cray.pc: Makefile
	@mkdir -p $(dir $@)
	@printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: cray' 'Description: Ray-style tasks, actors and object store in a LuaJIT runtime' \
	  'Version: $(VERSION)' \
	  'Requires.private: $(PKGS)' 'Libs: -L$${libdir} -lcray' 'Libs.private: $(SYSLIBS)' \
	  'Cflags: -I$${includedir}' > $@

# ---- set-up ----

DEBS := luajit libluajit-5.1-dev libuv1-dev liblmdb-dev lua-busted lua-dkjson libmsgpack-dev pkg-config \
        valgrind luarocks bsdutils openmpi-bin libopenmpi-dev
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

deps:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y -q $$missing || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $$missing; }; \
	fi

# ---- fuzzing ----

# libFuzzer comes with clang's runtime libraries, needed by these targets only.
FUZZ_DEBS := clang libclang-rt-14-dev
FUZZ_SECONDS ?= 60

fuzz:
	@$(MAKE) --no-print-directory deps DEBS="$(DEBS) $(FUZZ_DEBS)"
	@$(MAKE) --no-print-directory SAN=fuzz fuzzers

fuzzers: $(patsubst %,$(B)/fuzzers/%,$(FUZZ_NAMES))

# Each target starts from its kept inputs and writes what it learns to build/fuzz/corpus/;
# an input that breaks a promise lands in build/fuzz/findings/ and fails the run (keep it
# in spec/fuzz/NAME/ once fixed).
fuzz-run: fuzz
	@for f in $(FUZZ_NAMES); do \
	  mkdir -p build/fuzz/corpus/$$f build/fuzz/findings; \
	  echo "== fuzzing $$f for $(FUZZ_SECONDS) s"; \
	  if build/fuzz/fuzzers/$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	       -artifact_prefix=build/fuzz/findings/$$f- build/fuzz/corpus/$$f spec/fuzz/$$f \
	       > build/fuzz/$$f.log 2>&1; then \
	    grep -E '^(Done|stat::number_of_executed_units)' build/fuzz/$$f.log; \
	  else \
	    tail -n 60 build/fuzz/$$f.log; echo "fuzz target $$f failed"; exit 1; \
	  fi; \
	done

# ---- soak ----

# Fails when a ref is hung or wrong (the script's exit status) or a sanitizer reported.
SOAK_SECONDS ?= 60
SAN_REPORT := ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:
soak: deps
	@$(MAKE) --no-print-directory $(B)/crayrun
	@$(B)/crayrun spec/soak/soak.lua $(SOAK_SECONDS) > $(B)/soak.log 2>&1; rc=$$?; \
	  cat $(B)/soak.log; \
	  if grep -qE '$(SAN_REPORT)' $(B)/soak.log; then echo "soak: a sanitizer reported"; exit 1; fi; \
	  exit $$rc

# ---- running ----

run: deps
	@$(MAKE) --no-print-directory all
	$(B)/crayrun examples/squares.lua 10

SANLIB_PATH = $(if $(SANLIB),$(shell $(CC) -print-file-name=lib$(SANLIB).so))
test: deps
	@$(MAKE) --no-print-directory all
	@B=$(B) SAN=$(SAN) SANLIB=$(SANLIB_PATH) sh spec/run

# The build's output goes to stderr: stdout carries only the benchmarks' lines.
bench:
	@$(MAKE) --no-print-directory deps >&2
	@$(MAKE) --no-print-directory all >&2
	@B=$(B) sh bench/run

# The Savina benchmarks against the Erlang/OTP peer, alternating (bench/peers); skipped,
# saying so, when escript is not installed.
bench-peers:
	@$(MAKE) --no-print-directory all >&2
	@B=$(B) sh bench/peers

# What LuaRocks installs (cray-scm-1.rockspec): the Lua module and crayrun.
install-lua: $(B)/cray.so $(B)/crayrun
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LUA_CMOD_DIR)
	install -m 755 $(B)/crayrun $(DESTDIR)$(BINDIR)/crayrun
	install -m 755 $(B)/cray.so $(DESTDIR)$(LUA_CMOD_DIR)/cray.so

install: all install-lua
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 $(B)/libcray.a $(DESTDIR)$(PREFIX)/lib/libcray.a
	install -m 755 $(B)/libcray.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libcray.so.$(VERSION)
	ln -sf libcray.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libcray.so
	$(if $(TRANSPORT),install -d $(DESTDIR)$(PREFIX)/lib/cray && \
	  install -m 755 $(TRANSPORT) $(DESTDIR)$(PREFIX)/lib/cray/cray_mpi.so)
	sed 's|^prefix=.*|prefix=$(PREFIX)|' $(B)/cray.pc > $(DESTDIR)$(PREFIX)/lib/pkgconfig/cray.pc
	install -m 644 runtime/cray.h $(DESTDIR)$(PREFIX)/include/cray.h
	install -m 644 docs/crayrun.1 $(DESTDIR)$(PREFIX)/share/man/man1/crayrun.1

clean:
	rm -rf build

# The dependency files of this build only (-MMD writes one beside each object).
-include $(wildcard $(B)/obj/*/*.d $(B)/gen/*.d $(B)/tests/*.d $(B)/examples/*.d \
                    $(B)/examples/*/*.d $(B)/bench/*.d $(B)/replay/*.d $(B)/fuzzers/*.d)
