// Allocation on a calendar event: `tape backup --new-set-every week` starts a new
// media set with the first backup of each week (of each day, of each month) and
// continues the current set otherwise — what a weekly tape rotation wants: Monday's
// backup takes fresh tapes, the backups until Sunday append to them, and the set
// goes off-site as one. Periods begin at local midnight (a week on Monday, a month
// on its 1st), in the time zone of the machine (TZ).
#pragma once

#include <cstdint>
#include <string>

namespace arche::tape {

enum class NewSetEvery { never, day, week, month };

// "day", "week", "month" (usage error otherwise).
NewSetEvery parse_new_set_every(const std::string& text);
const char* to_string(NewSetEvery every);

// Unix seconds of the start of the period `now` lies in.
int64_t period_start(NewSetEvery every, int64_t now);
// A set created at `created` is to be followed by a new one at `now`: it began
// before the period `now` is in.
bool new_set_due(NewSetEvery every, int64_t created, int64_t now);

}  // namespace arche::tape
