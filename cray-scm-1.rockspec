-- LuaRocks builds the module with the Makefile: run `luarocks make` in a checkout (the
-- source below is then not fetched: the checkout is built as it is).
rockspec_format = "3.0"
package = "cray"
version = "scm-1"

source = {
  url = "git+file://.",
}

description = {
  summary = "Ray's tasks, actors and object store as a small C runtime scripted in LuaJIT",
  detailed = [[
cray runs remote functions (tasks), actors and an object store that hands values between
them by reference, on N worker threads each with its own LuaJIT state. require "cray" in
any LuaJIT program, run scripts with crayrun, or embed it in C through cray.h.]],
}

-- LuaJIT only (the codec uses its FFI and bytecode); the system libraries come from the
-- OS: on Debian, `make deps` installs them (libuv1-dev, liblmdb-dev, libluajit-5.1-dev).
dependencies = {
  "lua == 5.1",
}

external_dependencies = {
  LIBUV = {header = "uv.h"},
  LMDB = {header = "lmdb.h"},
}

build = {
  type = "make",
  build_target = "all",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
  },
  install_target = "install-lua",
  install_variables = {
    BINDIR = "$(BINDIR)",
    LUA_CMOD_DIR = "$(LIBDIR)",
  },
}
