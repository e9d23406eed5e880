#include "image/mirror/status.h"

#include "core/json.h"

namespace arche::image::mirror {

std::string rfc3339(int64_t time_ns) {
  // The one time format of arche's output (core/json.h).
  return time_ns ? arche::rfc3339(time_ns / 1000000000) : "";
}

namespace {

Json time_or_null(int64_t ns) { return ns ? Json(rfc3339(ns)) : Json(nullptr); }

Json sync_json(const SyncRecord& r, bool with_slot) {
  if (r.time_ns == 0) return nullptr;
  Json j{{"time", rfc3339(r.time_ns)}};
  if (with_slot) j["leg"] = r.slot;
  j["regions"] = r.regions;
  j["bytes-read"] = r.bytes_read;
  j["bytes-written"] = r.bytes_written;
  j["bytes-zeroed"] = r.bytes_zeroed;
  j["seconds"] = static_cast<double>(r.milliseconds) / 1000.0;
  return j;
}

}  // namespace

Json to_json(const MirrorStatus& s) {
  Json legs = Json::array();
  for (const LegStatus& l : s.legs) {
    Json j{{"slot", l.slot},
           {"path", l.path},
           {"uuid", l.uuid},
           {"state", to_string(l.state)},
           {"present", l.present},
           {"note", l.note.empty() ? Json(nullptr) : Json(l.note)},
           {"rebuild-position", l.state == LegState::rebuilding ? Json(l.rebuild_cursor) : Json(nullptr)},
           {"replaces", l.replaces >= 0 ? Json(l.replaces) : Json(nullptr)},
           {"healed-blocks", l.healed},
           {"read-errors", l.read_errors},
           {"write-errors", l.write_errors}};
    legs.push_back(std::move(j));
  }
  Json events = Json::array();
  for (const EventRecord& e : s.events) {
    Json j{{"time", rfc3339(e.time_ns)}, {"kind", to_string(e.kind)}, {"leg", e.slot}};
    const bool block_event = e.kind == EventKind::healed_mismatch || e.kind == EventKind::healed_read_error ||
                             e.kind == EventKind::unrecoverable || e.kind == EventKind::scrub_mismatch;
    j["block"] = block_event ? Json(e.block) : Json(nullptr);
    j["offset"] = block_event ? Json(e.block * s.geometry.block_size) : Json(nullptr);
    events.push_back(std::move(j));
  }
  Json scrub{{"state", to_string(s.scrub.state)},
             {"position", s.scrub.cursor},
             {"started", time_or_null(s.scrub.started_ns)},
             {"finished", time_or_null(s.scrub.finished_ns)},
             {"blocks-checked", s.scrub.checked},
             {"healed-blocks", s.scrub.healed},
             {"unrecoverable-blocks", s.scrub.unrecoverable},
             {"mismatches", s.scrub.mismatches}};
  return Json{{"name", s.name},
              {"uuid", s.uuid},
              {"state", s.state},
              {"size", s.geometry.data_size},
              {"block-size", s.geometry.block_size},
              {"region-size", s.geometry.region_size},
              {"checksum", to_string(s.geometry.checksum)},
              {"event", s.event},
              {"legs", legs},
              {"dirty-regions", s.dirty_regions},
              {"healed-blocks", s.healed},
              {"unrecoverable-blocks", s.unrecoverable},
              {"scrub", scrub},
              {"last-resync", sync_json(s.last_resync, false)},
              {"last-rebuild", sync_json(s.last_rebuild, true)},
              {"events", events}};
}

}  // namespace arche::image::mirror
