// Where tapes come from: a DEVICE is /dev/nstN (a real drive; the next tape comes
// from a changer hook command, e.g. `mtx load`, or from the operator at a prompt)
// or vtape:DIR (a directory of virtual cartridges, NAME.vtape, one of them loaded
// into the virtual drive; DIR/drive names it). The library loads tapes; the caller
// checks their labels (media.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tape/syscalls.h"
#include "tape/vtape.h"

namespace arche::tape {

class Library {
 public:
  virtual ~Library() = default;
  // The DEVICE as the user named it.
  virtual const std::string& device() const = 0;
  virtual std::shared_ptr<TapeSyscalls> syscalls() = 0;
  // What the drive is opened as (vtape: the loaded cartridge's file).
  virtual std::string drive_path() = 0;
  // Makes the tape labelled `label` the loaded one; an empty label asks for any
  // tape (`why` says what for: "a writable tape of pool weekly"). A not_found error
  // when it cannot be had.
  virtual void load(const std::string& label, const std::string& why) = 0;
  // The cartridges a vtape library holds (their names, which are their labels),
  // sorted; empty for a real drive, where only the loaded tape is known.
  virtual std::vector<std::string> cartridges() const = 0;
  // The loaded cartridge's name (vtape), "" when unknown or none.
  virtual std::string loaded() const = 0;
};

// Parses DEVICE. `changer_command` is for real drives (run with sh -c, with
// $ARCHE_TAPE_DEVICE, $ARCHE_TAPE_LABEL (empty: any) and $ARCHE_TAPE_REASON set).
std::unique_ptr<Library> open_library(const std::string& device, const std::string& changer_command = "",
                                      std::shared_ptr<TapeSyscalls> syscalls = nullptr);

// vtape:DIR only: makes DIR/NAME.vtape (DIR too, when missing) and loads it.
void create_vtape_cartridge(const std::string& device, const std::string& name, const CartridgeInfo& info);
bool is_vtape(const std::string& device);

}  // namespace arche::tape
