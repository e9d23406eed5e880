#include "tape/session.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"

namespace arche::tape {

SetWriter::SetWriter(Library& library, Catalog& catalog, const SetChoice& choice)
    : library_(library), catalog_(catalog), choice_(choice) {
  if (!choice_.new_set && continue_current()) return;
  set_uuid_ = random_uuid();
  set_ = uuid_text(set_uuid_);
  CatalogSet s;
  s.uuid = set_;
  s.pool = choice_.pool;
  s.repository = choice_.repository;
  s.key_fingerprint = choice_.key_fingerprint;
  s.created = s.last_written = choice_.now;
  s.retention_days = choice_.retention_days;
  catalog_.sets.push_back(s);
  allocate(1);
}

SetWriter::~SetWriter() {
  // Without finish() (an error): stop the writer thread; what is on tape stays,
  // without a catalog archive at its end (catalog rebuild reads the last one).
  file_writer_.reset();
  pump_.reset();
  drive_.reset();
}

CatalogTape& SetWriter::tape() {
  CatalogTape* t = catalog_.find_tape(tape_uuid_);
  if (!t) fail(ErrorCategory::internal, "tape {} left the catalog", tape_uuid_);
  return *t;
}

void SetWriter::open_tape(const std::string& label, bool writable) {
  close_tape();
  library_.load(label, fmt::format("writing media set {} of pool {}", set_.empty() ? "(new)" : set_, choice_.pool));
  drive_ = std::make_unique<TapeDrive>(library_.syscalls(), library_.drive_path(), writable);
}

void SetWriter::close_tape() {
  if (pump_) pump_->drain();
  if (pump_) bytes_before_ += pump_->bytes_written();
  pump_.reset();
  drive_.reset();
}

// The pool's newest set, when it is this repository's and its last tape can take more.
bool SetWriter::continue_current() {
  const CatalogSet* current = nullptr;
  for (const CatalogSet& s : catalog_.sets)
    if (s.pool == choice_.pool && (!current || s.created >= current->created)) current = &s;
  if (!current || current->tapes.empty()) return false;
  if (current->repository != choice_.repository || current->key_fingerprint != choice_.key_fingerprint) return false;
  if (new_set_due(choice_.new_set_every, current->created, choice_.now)) {
    note("media set {} of pool {} began before this {}: starting a new one", current->uuid, choice_.pool,
         to_string(choice_.new_set_every));
    return false;
  }
  const CatalogTape* last = catalog_.find_tape(current->tapes.back());
  if (!last || last->full || last->media_set != current->uuid) return false;
  set_ = current->uuid;
  set_uuid_ = parse_uuid(set_, "media set");
  open_tape(last->label, true);
  std::optional<MediaLabel> l = read_label(*drive_);
  if (!l || uuid_text(l->tape) != last->uuid || l->media_set != set_uuid_)
    fail(ErrorCategory::corrupt, "tape {} in {} is not the tape the catalog knows by that label", last->label,
         library_.device());
  drive_->to_end_of_data();
  next_file_ = static_cast<uint32_t>(drive_->status().file_number) + 1;
  tape_uuid_ = last->uuid;
  sequence_ = last->sequence;
  used_.push_back(last->label);
  pump_ = std::make_unique<RecordPump>(*drive_);
  return true;
}

std::string SetWriter::refusal(const std::optional<MediaLabel>& l) const {
  if (!l) return "blank (label it first: arche tape label)";
  if (l->pool != choice_.pool) return fmt::format("belongs to pool {}, not {}", l->pool, choice_.pool);
  if (is_nil(l->media_set)) return "";
  const std::string set = uuid_text(l->media_set);
  if (set == set_) return "already in this media set";
  const CatalogSet* s = catalog_.find_set(set);
  if (!s)
    return fmt::format("holds media set {}, which the catalog does not know (run: arche tape catalog rebuild)", set);
  if (s->expires() > choice_.now)
    return fmt::format("holds media set {} until {} (retention {} days)", set, rfc3339(s->expires()),
                       s->retention_days);
  return "";
}

void SetWriter::allocate(uint32_t sequence) {
  std::vector<std::string> reasons;
  std::vector<std::string> candidates = library_.cartridges();
  const bool ask = candidates.empty();  // a real drive: whatever the operator or changer loads
  if (!ask && !used_.empty()) {
    // The cartridges after the last one used, then the rest.
    auto it = std::upper_bound(candidates.begin(), candidates.end(), used_.back());
    std::rotate(candidates.begin(), it, candidates.end());
  }
  for (size_t i = 0; ask ? i < 3 : i < candidates.size(); ++i) {
    const std::string name = ask ? "" : candidates[i];
    if (std::find(used_.begin(), used_.end(), name) != used_.end()) continue;
    std::optional<MediaLabel> l;
    std::string why;
    try {
      open_tape(name, true);
      l = read_label(*drive_);
      why = refusal(l);
    } catch (const Error& e) {
      if (e.category() != ErrorCategory::permission && e.category() != ErrorCategory::corrupt) throw;
      why = e.category() == ErrorCategory::permission ? "write-protected" : e.what();
    }
    const std::string shown = l ? l->label : (name.empty() ? library_.device() : name);
    if (!why.empty()) {
      warn("tape {} refused: {}", shown, why);
      reasons.push_back(shown + ": " + why);
      drive_.reset();
      continue;
    }
    // Into the set: the label is written again with the set's facts; the rest of the
    // tape is gone from here on.
    if (l->media_set != MediaLabel{}.media_set) {
      if (CatalogSet* old = catalog_.find_set(uuid_text(l->media_set))) std::erase(old->tapes, uuid_text(l->tape));
    }
    l->media_set = set_uuid_;
    l->sequence = sequence;
    l->key_fingerprint = choice_.key_fingerprint;
    l->repository = choice_.repository;
    l->set_joined = choice_.now;
    l->record_size = choice_.record_size;
    write_label(*drive_, *l);
    tape_uuid_ = uuid_text(l->tape);
    CatalogTape* t = catalog_.find_tape(tape_uuid_);
    if (!t) {
      catalog_.tapes.push_back({});
      t = &catalog_.tapes.back();
    }
    *t = CatalogTape{tape_uuid_,          l->label, l->pool, set_, sequence, choice_.key_fingerprint, l->labeled,
                     choice_.record_size, false,    {}};
    catalog_.find_set(set_)->tapes.push_back(tape_uuid_);
    sequence_ = sequence;
    next_file_ = 2;
    used_.push_back(l->label);
    pump_ = std::make_unique<RecordPump>(*drive_);
    return;
  }
  std::string all;
  for (const std::string& r : reasons) all += (all.empty() ? "" : "; ") + r;
  fail(ErrorCategory::no_space, "no tape of pool {} to write in {}{}{}", choice_.pool, library_.device(),
       all.empty() ? "" : ": ", all);
}

void SetWriter::begin_file(ContentType type, const Uuid& archive, uint32_t part, const Json& metadata) {
  if (pump_->early_warning()) next_tape();
  FileHeader h;
  h.type = type;
  h.part = part;
  h.archive = archive;
  h.metadata = metadata;
  RecordContext ctx{set_uuid_, sequence_, next_file_, choice_.record_size};
  file_writer_ = std::make_unique<ArchiveWriter>(*pump_, ctx, h);
  file_ = CatalogFile{next_file_, to_string(type), uuid_text(archive), part, 0, {}};
}

bool SetWriter::add(const std::string& name, std::span<const uint8_t> bytes) {
  const EntryPosition at = file_writer_->add_object(name, bytes);
  file_.objects.push_back({name, bytes.size(), at.record, at.offset});
  return !pump_->early_warning();
}

void SetWriter::end_file() {
  file_.records = file_writer_->finish();
  file_writer_.reset();
  if (file_.kind != to_string(ContentType::catalog_archive)) tape().files.push_back(file_);
  ++next_file_;
}

void SetWriter::write_catalog_archive() {
  CatalogSet* s = catalog_.find_set(set_);
  ++s->generation;
  s->last_written = choice_.now;
  Catalog part = catalog_.subset(set_);
  Json meta = {{"media-set", set_}, {"generation", s->generation}};
  FileHeader h;
  h.type = ContentType::catalog_archive;
  h.archive = random_uuid();
  h.metadata = meta;
  RecordContext ctx{set_uuid_, sequence_, next_file_, choice_.record_size};
  file_writer_ = std::make_unique<ArchiveWriter>(*pump_, ctx, h);
  file_ = CatalogFile{next_file_, to_string(ContentType::catalog_archive), uuid_text(h.archive), 1, 0, {}};
  file_writer_->add_object("catalog", encode_catalog(part));
  end_file();
}

void SetWriter::next_tape() {
  tape().full = true;
  write_catalog_archive();
  close_tape();
  allocate(sequence_ + 1);
}

void SetWriter::finish() {
  write_catalog_archive();
  close_tape();
}

uint64_t SetWriter::bytes_written() const { return bytes_before_ + (pump_ ? pump_->bytes_written() : 0); }

}  // namespace arche::tape
