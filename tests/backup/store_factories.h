// The stores the store-independent backup suites run against (store_suite_test.cpp,
// concurrency_test.cpp): LocalStore and the in-memory store now; the SFTP and S3
// factories are added here (one line each) when those stores exist.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backup/store.h"

namespace arche::backup::test {

struct StoreFactory {
  std::string name;  // a test-name part: letters and digits only
  // A new, empty store for one repository; `scratch` is a directory the test owns
  // (for stores that keep files).
  std::function<std::shared_ptr<Store>(const std::string& scratch)> make;
};

std::vector<StoreFactory> store_factories();

}  // namespace arche::backup::test
