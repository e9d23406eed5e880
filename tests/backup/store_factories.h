// The stores the contract suite (store_contract_test.cpp) runs against. Each factory
// returns a fresh, empty store per call; servers a factory needs are started at its
// first call and shared by the whole test binary. To add a store (LocalStore, the
// in-memory fault-injecting store), add one entry in store_factories.cpp.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "backup/store.h"

namespace arche::test {

struct StoreFactory {
  std::string name;  // a test name part: letters and digits
  std::function<std::unique_ptr<backup::Store>()> make;
};

std::vector<StoreFactory> store_factories();

// Shown by GoogleTest in failure messages.
inline std::ostream& operator<<(std::ostream& out, const StoreFactory& f) { return out << f.name; }

}  // namespace arche::test
