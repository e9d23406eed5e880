// `arche job run`: one night of a job (docs/jobs.md), top to bottom:
//
//   lock the job (one run at a time: job_lock.h)
//   before hook          failing: the run stops here (failure)
//   open the repository  failing: the run stops here (failure)
//   back up each source  one failing does not stop the others (warning)
//   prune                the job's snapshots, each source's group on its own
//   each offsite copy    a replica that misses tonight's snapshots is a failure
//   verify 1/N of packs  rotating by the date: every chunk is read every N nights
//   after hook, on-failure hook (the summary on its stdin), the history record
//
// A VM is backed up from its disk files while it is stopped; one whose disks a
// running VM holds is refused with one clear error for that VM (live snapshots of
// running VMs come later: they will be one more kind of source here).
#pragma once

#include <cstdint>

#include "jobs/job_file.h"
#include "jobs/run_record.h"

namespace arche::jobs {

struct RunOptions {
  // The time the run takes as "now" for its snapshots and the verified part (unix
  // ns); 0: the clock. Tests simulate nights with it.
  int64_t now_ns = 0;
  unsigned threads = 0;
};

// Throws only when the job's lock is held by another run (busy) or on an interrupt
// (after recording the run); everything else ends up in the record, which is also
// appended to the history.
RunRecord run_job(const Job& job, const RunOptions& options = {});

// The part of the packs a run at `now_ns` verifies: 1 + (days since the epoch mod parts).
uint32_t verify_part_for(int64_t now_ns, uint32_t parts);

}  // namespace arche::jobs
