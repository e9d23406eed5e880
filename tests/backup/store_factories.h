// The stores the store-independent suites run against: the Store contract
// (store_contract_test.cpp), the backup suite (store_suite_test.cpp) and the many-hosts
// test (concurrency_test.cpp). LocalStore and the in-memory stores always; SFTP and S3
// when the target defines ARCHE_TEST_REMOTE_STORES (it then links arche_test_servers:
// a real sshd and a one-node Ceph radosgw, started at a factory's first call and shared
// by the whole test binary). To add a store, add one entry in store_factories.cpp.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
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

// Shown by GoogleTest in failure messages.
inline std::ostream& operator<<(std::ostream& out, const StoreFactory& f) { return out << f.name; }

}  // namespace arche::backup::test
