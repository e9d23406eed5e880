#include "tests/backup/store_factories.h"

#include "backup/store_local.h"
#include "tests/backup/memory_store.h"

namespace arche::backup::test {

std::vector<StoreFactory> store_factories() {
  return {
      {"Local", [](const std::string& scratch) { return std::shared_ptr<Store>(LocalStore::create(scratch + "/repo")); }},
      {"Memory", [](const std::string&) { return std::shared_ptr<Store>(std::make_shared<MemoryStore>()); }},
      // An S3-like store: listings lag behind writes, no rename, no exclusive create.
      {"EventualMemory",
       [](const std::string&) {
         MemoryStore::Options o;
         o.listing_lag = std::chrono::milliseconds(30);
         o.capabilities.listing_delay_ms = 60;
         return std::shared_ptr<Store>(std::make_shared<MemoryStore>(o));
       }},
  };
}

}  // namespace arche::backup::test
