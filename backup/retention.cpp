#include "backup/retention.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <sstream>

#include "core/error.h"

namespace arche::backup {

namespace {

constexpr int64_t kSecond = 1000000000;

std::string bucket(int64_t time_ns, const char* format) {
  std::time_t t = static_cast<std::time_t>(time_ns / kSecond);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int64_t parse_duration(const std::string& text) {
  if (text.empty()) fail(ErrorCategory::usage, "empty duration");
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start || i == text.size() || i - start > 6)
      fail(ErrorCategory::usage, "duration '{}': expected NUMBER followed by h, d, w, m or y (e.g. 7d, 1y6m)", text);
    int64_t n = std::stoll(text.substr(start, i - start));
    int64_t unit;
    switch (text[i]) {
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      case 'w': unit = 7 * 86400; break;
      case 'm': unit = 31 * 86400; break;
      case 'y': unit = 365 * 86400; break;
      default: fail(ErrorCategory::usage, "duration '{}': unknown unit '{}' (h, d, w, m, y)", text, text[i]);
    }
    total += n * unit * kSecond;
    ++i;
  }
  return total;
}

std::vector<KeepDecision> apply_policy(const std::vector<Snapshot>& snapshots, const KeepPolicy& policy) {
  std::vector<KeepDecision> decisions(snapshots.size());
  std::vector<size_t> order(snapshots.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
    decisions[i].index = i;
  }
  // Newest first; ties broken by id so the result does not depend on input order.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Snapshot &x = snapshots[a], &y = snapshots[b];
    return x.time_ns != y.time_ns ? x.time_ns > y.time_ns : x.id > y.id;
  });
  auto keep = [&](size_t i, const char* why) {
    decisions[i].keep = true;
    decisions[i].reasons.push_back(why);
  };
  for (size_t k = 0; k < order.size() && static_cast<int>(k) < policy.last; ++k) keep(order[k], "last");
  struct Rule {
    int count;
    const char* format;
    const char* name;
  };
  const Rule rules[] = {{policy.hourly, "%Y-%m-%d %H", "hourly"}, {policy.daily, "%Y-%m-%d", "daily"},
                        {policy.weekly, "%G-W%V", "weekly"},      {policy.monthly, "%Y-%m", "monthly"},
                        {policy.yearly, "%Y", "yearly"}};
  for (const Rule& rule : rules) {
    if (rule.count <= 0) continue;
    int kept = 0;
    std::string last;
    for (size_t i : order) {
      if (kept >= rule.count) break;
      std::string b = bucket(snapshots[i].time_ns, rule.format);
      if (b == last) continue;  // an newer snapshot of this period is kept already
      last = b;
      keep(i, rule.name);
      ++kept;
    }
  }
  if (policy.within_ns > 0 && !order.empty()) {
    const int64_t newest = snapshots[order.front()].time_ns;
    for (size_t i : order)
      if (snapshots[i].time_ns >= newest - policy.within_ns) keep(i, "within");
  }
  return decisions;
}

GroupBy parse_group_by(const std::string& text) {
  GroupBy by{false, false, false};
  for (const std::string& field : split_commas(text)) {
    if (field == "host") by.host = true;
    else if (field == "paths") by.paths = true;
    else if (field == "tags") by.tags = true;
    else fail(ErrorCategory::usage, "--group-by: unknown field '{}' (host, paths, tags)", field);
  }
  return by;
}

bool SnapshotFilter::matches(const Snapshot& s) const {
  if (s.name.compare(0, prefix.size(), prefix) != 0) return false;
  if (!hosts.empty() && std::find(hosts.begin(), hosts.end(), s.host) == hosts.end()) return false;
  if (tags.empty()) return true;
  for (const std::string& set : tags) {
    bool all = true;
    for (const std::string& t : split_commas(set)) all &= std::find(s.tags.begin(), s.tags.end(), t) != s.tags.end();
    if (all) return true;
  }
  return false;
}

bool GroupKey::operator<(const GroupKey& o) const {
  return std::tie(host, paths, tags) < std::tie(o.host, o.paths, o.tags);
}

GroupKey group_key(const Snapshot& s, const GroupBy& by) {
  GroupKey k;
  if (by.host) k.host = s.host;
  if (by.paths) {
    k.paths = s.paths;
    for (const ImageRecord& i : s.images) k.paths.push_back(i.source);
    std::sort(k.paths.begin(), k.paths.end());
    k.paths.erase(std::unique(k.paths.begin(), k.paths.end()), k.paths.end());
  }
  if (by.tags) {
    k.tags = s.tags;
    std::sort(k.tags.begin(), k.tags.end());
    k.tags.erase(std::unique(k.tags.begin(), k.tags.end()), k.tags.end());
  }
  return k;
}

std::vector<RetentionGroup> apply_retention(const std::vector<Snapshot>& snapshots, const SnapshotFilter& filter,
                                            const GroupBy& by, const KeepPolicy& policy) {
  std::map<GroupKey, std::vector<Snapshot>> members;
  for (const Snapshot& s : snapshots)
    if (filter.matches(s)) members[group_key(s, by)].push_back(s);
  std::vector<RetentionGroup> groups;
  for (auto& entry : members) {
    // Not a structured binding: clang (the fuzz build) cannot capture one in a lambda.
    const std::vector<Snapshot>& list = entry.second;
    RetentionGroup g;
    g.key = entry.first;
    std::vector<KeepDecision> decisions = apply_policy(list, policy);
    std::vector<size_t> order(list.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return list[a].time_ns != list[b].time_ns ? list[a].time_ns > list[b].time_ns : list[a].id > list[b].id;
    });
    for (size_t i : order) {
      if (decisions[i].keep) {
        g.kept.push_back(list[i]);
        g.kept_reasons.push_back(decisions[i].reasons);
      } else {
        g.removed.push_back(list[i]);
      }
    }
    groups.push_back(std::move(g));
  }
  return groups;
}

}  // namespace arche::backup
