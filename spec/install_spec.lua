local support = require "spec.support"

describe("make install", function()
  it("puts every product under DESTDIR/PREFIX", function()
    local dest = os.tmpname()
    os.remove(dest)
    local status, _, err = support.run(("make --no-print-directory install SAN=%s DESTDIR=%s "
                                        .. "PREFIX=/opt/cray"):format(support.san, dest))
    assert.are.equal(0, status, err)
    for _, path in ipairs{"bin/crayrun", "lib/libcray.a", "lib/libcray.so",
                          "lib/lua/5.1/cray.so", "lib/pkgconfig/cray.pc", "include/cray.h",
                          "share/man/man1/crayrun.1"} do
      local f = io.open(dest .. "/opt/cray/" .. path)
      assert.is_not_nil(f, path)
      f:close()
    end
    local f = io.open(dest .. "/opt/cray/lib/pkgconfig/cray.pc")
    local pc = f:read("*a")
    f:close()
    assert.matches("prefix=/opt/cray\n", pc)
    assert.matches("Libs: %-L%${libdir} %-lcray", pc)
    os.execute("rm -rf " .. dest)
  end)
end)
