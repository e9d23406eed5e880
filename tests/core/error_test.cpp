#include "core/error.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <set>

namespace arche {
namespace {

TEST(Error, EveryCategoryHasItsOwnExitCodeAbove63) {
  std::set<int> codes;
  for (int c = 0; c <= static_cast<int>(ErrorCategory::interrupted); ++c) {
    int code = exit_code(static_cast<ErrorCategory>(c));
    EXPECT_GE(code, 64) << category_name(static_cast<ErrorCategory>(c));
    EXPECT_TRUE(codes.insert(code).second) << "duplicate exit code " << code;
  }
}

TEST(Error, ErrnoMapsToCategoriesAndKeepsContext) {
  try {
    throw_errno(ENOENT, "open /nowhere");
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::not_found);
    EXPECT_EQ(std::string(e.what()), "open /nowhere: No such file or directory");
  }
  EXPECT_EQ(category_for_errno(ENOSPC), ErrorCategory::no_space);
  EXPECT_EQ(category_for_errno(EACCES), ErrorCategory::permission);
  EXPECT_EQ(category_for_errno(EIO), ErrorCategory::io);
}

TEST(Error, FailFormats) {
  try {
    fail(ErrorCategory::corrupt, "{}: table at 0x{:x}", "img", 4096);
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::corrupt);
    EXPECT_EQ(std::string(e.what()), "img: table at 0x1000");
  }
}

}  // namespace
}  // namespace arche
