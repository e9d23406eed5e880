// The example files installed under share/doc/arche/examples are valid input.
#include <gtest/gtest.h>

#include "hv/config.h"

namespace arche {
namespace {

TEST(Examples, VmTomlLoadsAndValidates) {
  hv::VmConfig c = hv::load_vm_config(std::string(ARCHE_SOURCE_DIR) + "/examples/VM.toml");
  EXPECT_EQ(c.name, "fileserver");
  EXPECT_EQ(c.memory, 2048ull << 20);
  EXPECT_EQ(c.cpus, 2u);
  ASSERT_EQ(c.disks.size(), 2u);
  EXPECT_TRUE(c.disks[1].readonly);
  ASSERT_EQ(c.nets.size(), 1u);
  EXPECT_NO_THROW(c.validate());
}

}  // namespace
}  // namespace arche
