// The Store contract (backup/store.h), one suite run against every store: each test
// gets a fresh, empty store from a factory. To add a store, add a factory to
// store_factories() below.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "backup/store.h"
#include "core/error.h"
#include "tests/backup/store_factories.h"
#include "tests/common/test_util.h"

namespace arche::backup {
namespace {

using arche::test::random_bytes;

class StoreContract : public ::testing::TestWithParam<test::StoreFactory> {
 protected:
  void SetUp() override { store_ = GetParam().make(dir_.path()); }
  Store& store() { return *store_; }
  // A listing once the store's listing delay has passed (capabilities(): an S3-like
  // store may show a new object in its listings only that much later).
  std::vector<ObjectInfo> listed(std::string_view prefix) {
    std::this_thread::sleep_for(std::chrono::milliseconds(store().capabilities().listing_delay_ms));
    return store().list(prefix);
  }
  arche::test::TempDir dir_;
  std::shared_ptr<Store> store_;
};

ErrorCategory category_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.category();
  }
  ADD_FAILURE() << "no error thrown";
  return ErrorCategory::internal;
}

std::set<std::string> names(const std::vector<ObjectInfo>& objects) {
  std::set<std::string> out;
  for (const ObjectInfo& o : objects) out.insert(o.name);
  return out;
}

void write_in_pieces(ObjectWriter& w, const std::vector<uint8_t>& data, size_t piece) {
  for (size_t at = 0; at < data.size(); at += piece) {
    w.append(std::span(data).subspan(at, std::min(piece, data.size() - at)));
  }
}

TEST_P(StoreContract, WriteReadStat) {
  const auto data = random_bytes(100000, 1);
  store().write("config", data, WriteMode::create);
  EXPECT_EQ(store().read("config"), data);
  const std::optional<ObjectInfo> info = store().stat("config");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->name, "config");
  EXPECT_EQ(info->size, data.size());
  EXPECT_GT(info->mtime, 1600000000);  // the servers report modification times
  EXPECT_FALSE(store().stat("keys/nothing"));
}

TEST_P(StoreContract, EmptyObject) {
  store().write("locks/empty", {}, WriteMode::create);
  EXPECT_TRUE(store().read("locks/empty").empty());
  ASSERT_TRUE(store().stat("locks/empty"));
  EXPECT_EQ(store().stat("locks/empty")->size, 0u);
}

TEST_P(StoreContract, RangesAndReaders) {
  const auto data = random_bytes(3 << 20, 2);
  store().write("data/ab/pack", data, WriteMode::create);
  for (auto [offset, length] : {std::pair<uint64_t, uint64_t>{0, 1}, {12345, 70000}, {(3 << 20) - 10, 10}, {1 << 20, 2 << 20}}) {
    const auto part = store().read_range("data/ab/pack", offset, length);
    ASSERT_EQ(part.size(), length);
    EXPECT_TRUE(std::equal(part.begin(), part.end(), data.begin() + static_cast<ptrdiff_t>(offset))) << offset;
  }
  EXPECT_EQ(category_of([&] { store().read_range("data/ab/pack", (3 << 20) - 10, 11); }), ErrorCategory::format);

  auto reader = store().open("data/ab/pack");
  EXPECT_EQ(reader->size(), data.size());
  std::vector<uint8_t> buffer(40000);
  reader->read(2 << 20, buffer);
  EXPECT_TRUE(std::equal(buffer.begin(), buffer.end(), data.begin() + (2 << 20)));
  EXPECT_EQ(category_of([&] { reader->read(data.size() - 100, buffer); }), ErrorCategory::format);
}

TEST_P(StoreContract, ListsRecursivelyByPrefix) {
  const std::map<std::string, size_t> objects = {{"config", 10}, {"keys/k1", 20}, {"data/ab/ab01", 30}, {"data/ab/ab02", 31},
                                                 {"data/cd/cd01", 40}, {"snapshots/s1", 50}, {"index/i1", 60}};
  for (const auto& [name, size] : objects) store().write(name, random_bytes(size, size), WriteMode::create);

  const std::vector<ObjectInfo> data = listed("data/");
  EXPECT_EQ(names(data), (std::set<std::string>{"data/ab/ab01", "data/ab/ab02", "data/cd/cd01"}));
  for (const ObjectInfo& o : data) EXPECT_EQ(o.size, objects.at(o.name)) << o.name;
  EXPECT_EQ(names(listed("data/ab/")), (std::set<std::string>{"data/ab/ab01", "data/ab/ab02"}));
  EXPECT_EQ(names(listed("data/ab/ab0")), (std::set<std::string>{"data/ab/ab01", "data/ab/ab02"}));
  EXPECT_EQ(names(listed("snapshots/")), (std::set<std::string>{"snapshots/s1"}));
  EXPECT_TRUE(listed("locks/").empty());
  std::set<std::string> all;
  for (const auto& entry : objects) all.insert(entry.first);
  EXPECT_EQ(names(listed("")), all);
}

TEST_P(StoreContract, ListingShowsManyObjects) {
  // More than one page of an S3 listing (1000 keys), spread over many directories.
  std::set<std::string> expected;
  std::vector<std::thread> threads;
  std::mutex mutex;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 1100; i += 8) {
        const std::string name = fmt::format("data/{:02x}/{:06d}", i % 256, i);
        store().write(name, {}, WriteMode::create);
        std::lock_guard lock(mutex);
        expected.insert(name);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(names(listed("data/")), expected);
}

TEST_P(StoreContract, RemoveAndMissingObjects) {
  store().write("snapshots/s", random_bytes(10, 3), WriteMode::create);
  store().remove("snapshots/s");
  EXPECT_FALSE(store().stat("snapshots/s"));
  EXPECT_NO_THROW(store().remove("snapshots/s"));  // gone already: not an error
  EXPECT_NO_THROW(store().remove("snapshots/never"));
  EXPECT_EQ(category_of([&] { store().read("snapshots/s"); }), ErrorCategory::not_found);
  EXPECT_EQ(category_of([&] { store().read_range("snapshots/s", 0, 1); }), ErrorCategory::not_found);
  EXPECT_EQ(category_of([&] { store().open("snapshots/s"); }), ErrorCategory::not_found);
}

TEST_P(StoreContract, CreateRefusesAnExistingObjectReplaceReplaces) {
  const auto first = random_bytes(1000, 4), second = random_bytes(2000, 5);
  store().write("keys/slot", first, WriteMode::create);
  EXPECT_EQ(category_of([&] { store().write("keys/slot", second, WriteMode::create); }), ErrorCategory::exists);
  EXPECT_EQ(category_of([&] {
              auto w = store().create("keys/slot", WriteMode::create);
              w->append(second);
              w->commit();
            }),
            ErrorCategory::exists);
  EXPECT_EQ(store().read("keys/slot"), first);
  store().write("keys/slot", second, WriteMode::replace);
  EXPECT_EQ(store().read("keys/slot"), second);
  auto w = store().create("keys/slot", WriteMode::replace);
  w->append(first);
  w->commit();
  EXPECT_EQ(store().read("keys/slot"), first);
}

TEST_P(StoreContract, ConcurrentCreatesHaveOneWinner) {
  if (!store().capabilities().exclusive_create) GTEST_SKIP() << GetParam().name << " has no atomic create-if-absent";
  std::atomic<int> won{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      try {
        store().write("locks/exclusive", random_bytes(100, 100 + t), WriteMode::create);
        ++won;
      } catch (const Error& e) {
        if (e.category() == ErrorCategory::exists) ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), 7);
}

TEST_P(StoreContract, WriterIsInvisibleUntilCommitAndLeavesNothingWhenAbandoned) {
  const auto data = random_bytes(3 << 20, 6);
  {
    auto w = store().create("data/ef/unfinished", WriteMode::create);
    write_in_pieces(*w, data, 1 << 20);
    EXPECT_EQ(w->bytes_written(), data.size());
    EXPECT_FALSE(store().stat("data/ef/unfinished"));
    EXPECT_TRUE(listed("data/").empty());
  }
  EXPECT_FALSE(store().stat("data/ef/unfinished"));
  EXPECT_TRUE(listed("").empty());

  auto w = store().create("data/ef/finished", WriteMode::create);
  write_in_pieces(*w, data, 100000);
  EXPECT_FALSE(store().stat("data/ef/finished"));
  w->commit();
  EXPECT_EQ(store().read("data/ef/finished"), data);
  EXPECT_EQ(names(listed("")), (std::set<std::string>{"data/ef/finished"}));
}

TEST_P(StoreContract, ConcurrentReaderNeverSeesPartOfAnObject) {
  // One object replaced again and again with a different 12 MiB content (S3: a
  // multipart upload each time); a reader in parallel must see one of them whole.
  const size_t size = 12 << 20;
  std::vector<std::vector<uint8_t>> versions;
  for (int v = 0; v < 3; ++v) versions.push_back(random_bytes(size, 10 + v));
  store().write("index/current", versions[0], WriteMode::create);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, torn{0};
  std::thread reader([&] {
    while (!done) {
      const std::vector<uint8_t> seen = store().read("index/current");
      ++reads;
      if (std::none_of(versions.begin(), versions.end(), [&](const auto& v) { return v == seen; })) ++torn;
    }
  });
  for (int round = 1; round <= 6; ++round) {
    auto w = store().create("index/current", WriteMode::replace);
    write_in_pieces(*w, versions[round % 3], 1 << 20);
    w->commit();
  }
  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(torn.load(), 0);
}

TEST_P(StoreContract, LargeObjectInManyPieces) {
  const auto data = random_bytes(21 << 20, 7);
  auto w = store().create("data/12/large", WriteMode::create);
  write_in_pieces(*w, data, 777777);  // pieces that do not line up with parts or requests
  w->commit();
  ASSERT_EQ(store().stat("data/12/large")->size, data.size());
  EXPECT_EQ(store().read("data/12/large"), data);
  const auto across = store().read_range("data/12/large", (5 << 20) - 1000, 2000);
  EXPECT_TRUE(std::equal(across.begin(), across.end(), data.begin() + (5 << 20) - 1000));
}

TEST_P(StoreContract, ParallelWriters) {
  const unsigned threads_count = std::max(2u, store().capabilities().parallelism);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (unsigned t = 0; t < threads_count; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < 3; ++i) {
          auto w = store().create(fmt::format("data/{:02x}/p{}", t, i), WriteMode::create);
          write_in_pieces(*w, random_bytes(2 << 20, t * 10 + i), 300000);
          w->commit();
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(listed("data/").size(), threads_count * 3);
  for (unsigned t = 0; t < threads_count; ++t) {
    EXPECT_EQ(store().read(fmt::format("data/{:02x}/p2", t)), random_bytes(2 << 20, t * 10 + 2));
  }
}

TEST_P(StoreContract, RefusesNamesOutsideTheContract) {
  for (const char* bad : {"../escape", "/absolute", "data//x", ""}) {
    EXPECT_EQ(category_of([&] { store().write(bad, {}, WriteMode::create); }), ErrorCategory::usage) << bad;
  }
}

TEST_P(StoreContract, LocationNamesTheStore) {
  EXPECT_FALSE(store().location().empty());
  const std::string message = [&] {
    try {
      store().read("snapshots/missing");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_NE(message.find(store().location()), std::string::npos) << message;
  EXPECT_NE(message.find("snapshots/missing"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreContract, ::testing::ValuesIn(test::store_factories()),
                         [](const ::testing::TestParamInfo<test::StoreFactory>& info) { return info.param.name; });

}  // namespace
}  // namespace arche::backup
