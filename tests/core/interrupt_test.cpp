// core/interrupt.h: a signal is recorded and turned into an `interrupted` error at
// the next check(); the same signal twice ends the process at once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/interrupt.h"

namespace arche {
namespace {

TEST(Interrupt, SignalBecomesAnErrorAtTheNextCheck) {
  interrupt::install_handlers();
  interrupt::reset();
  EXPECT_NO_THROW(interrupt::check());
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  EXPECT_EQ(interrupt::pending_signal(), SIGTERM);
  try {
    interrupt::check();
    ADD_FAILURE() << "check() did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::interrupted);
    EXPECT_STREQ(e.what(), "interrupted by SIGTERM");
  }
  EXPECT_EQ(interrupt::exit_code(), 143);
  interrupt::reset();
  EXPECT_EQ(interrupt::exit_code(), 130) << "no signal known: the Ctrl-C code";
}

TEST(Interrupt, TheSameSignalTwiceEndsTheProcess) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    interrupt::install_handlers();
    ::raise(SIGINT);  // recorded
    ::raise(SIGINT);  // the user insists: the default action
    ::_exit(0);       // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGINT);
}

}  // namespace
}  // namespace arche
