// How the remote stores (SFTP, S3) retry a request that failed for a reason that may
// pass: a dropped connection, a timeout, a server that is restarting or throttling.
// Exponential backoff with "equal jitter" (half the delay fixed, half random), so that
// many clients that failed together do not come back together, while the total wait
// stays predictable: with the defaults a request is given up after about 25 s of
// trying (8 attempts), long enough for a NAS or a gateway restart, short enough that
// a server that is really gone makes one clear error soon.
#pragma once

#include <chrono>
#include <string>

namespace arche::backup {

struct RetryPolicy {
  unsigned attempts = 8;  // tries in all, the first included
  std::chrono::milliseconds first_delay{250};
  std::chrono::milliseconds max_delay{8000};

  // The wait before retry number `retry` (1 for the first retry).
  std::chrono::milliseconds delay(unsigned retry) const;

  // The defaults, changed by ARCHE_STORE_RETRIES (attempts) and ARCHE_STORE_RETRY_DELAY_MS
  // (first delay), e.g. for a link known to be flaky.
  static RetryPolicy from_environment();
};

// Sleeps for `delay` in small steps, throwing `interrupted` as soon as a signal asks
// us to stop (core/interrupt.h), so Ctrl-C during a backoff is not ignored.
void backoff_sleep(std::chrono::milliseconds delay);

}  // namespace arche::backup
