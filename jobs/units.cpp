#include "jobs/units.h"

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cerrno>
#include <fstream>

#include "core/error.h"
#include "core/file.h"

extern char** environ;

namespace arche::jobs {

namespace {

namespace fs = boost::filesystem;

constexpr const char* kMarker = "# arche-job: ";  // first line of both units, then the job file

// systemd splits ExecStart= at spaces and treats %, \ and quotes specially: such a
// path is quoted, with % doubled.
std::string exec_word(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '%') out += "%%";
    else if (c == '"' || c == '\\') out += std::string("\\") + c;
    else out += c;
  }
  return '"' + out + '"';
}

void check_unit_value(const std::string& what, const std::string& value) {
  if (value.find_first_of("\n\r") != std::string::npos)
    fail(ErrorCategory::usage, "{} '{}' cannot go into a systemd unit (a line break)", what, value);
}

void systemctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"systemctl"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> p;
  for (std::string& a : argv) p.push_back(a.data());
  p.push_back(nullptr);
  pid_t pid;
  if (int rc = ::posix_spawnp(&pid, "systemctl", nullptr, nullptr, p.data(), environ); rc != 0)
    throw_errno(rc, "run systemctl");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw_errno(errno, "waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string line;
    for (size_t i = 1; i < argv.size(); ++i) line += " " + argv[i];
    fail(ErrorCategory::io, "systemctl{} failed (status {})", line, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
}

std::string unit_base(const Job& job) {
  for (char c : job.name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      fail(ErrorCategory::usage, "{}: job name '{}' cannot be a systemd unit name (letters, digits, '-', '_', '.')",
           job.path, job.name);
  return "arche-job-" + job.name;
}

// The job file named by the marker line of a unit; empty when arche did not make it.
std::string marked_job(const std::string& unit_path) {
  std::ifstream in(unit_path);
  std::string line;
  if (!std::getline(in, line) || line.rfind(kMarker, 0) != 0) return {};
  return line.substr(std::string(kMarker).size());
}

}  // namespace

UnitFiles make_units(const Job& job, const ScheduleOptions& options) {
  if (!job.passphrase.env.empty())
    fail(ErrorCategory::usage,
         "{}: passphrase-env does not reach a job started by a timer: use passphrase-credential (or passphrase-file)",
         job.path);
  check_unit_value("job file", job.path);
  check_unit_value("schedule", job.schedule);
  check_unit_value("randomized-delay", job.randomized_delay);
  check_unit_value("arche", options.arche_binary);
  const std::string base = unit_base(job);
  UnitFiles u;
  u.service_name = base + ".service";
  u.timer_name = base + ".timer";
  const std::string marker = kMarker + job.path + "\n# Made by `arche schedule install` (docs/jobs.md); `arche schedule remove` deletes it.\n";
  u.service = marker +
              "[Unit]\n"
              "Description=arche backup job " + job.name + "\n"
              "Wants=network-online.target\n"
              "After=network-online.target\n"
              "\n"
              "[Service]\n"
              "Type=oneshot\n"
              "ExecStart=" + exec_word(options.arche_binary) + " job run " + exec_word(job.path) + "\n";
  if (!job.passphrase.credential.empty()) {
    check_unit_value("credential directory", options.credential_dir);
    u.service += "LoadCredential=" + job.passphrase.credential + ":" + options.credential_dir + "/" +
                 job.passphrase.credential + "\n";
  }
  u.service +=
      "Nice=10\n"
      "IOSchedulingClass=idle\n";
  u.timer = marker +
            "[Unit]\n"
            "Description=Timer of the arche backup job " + job.name + "\n"
            "\n"
            "[Timer]\n"
            "OnCalendar=" + job.schedule + "\n"
            "Persistent=true\n"
            "RandomizedDelaySec=" + job.randomized_delay + "\n"
            "Unit=" + u.service_name + "\n"
            "\n"
            "[Install]\n"
            "WantedBy=timers.target\n";
  return u;
}

UnitFiles install_units(const Job& job, const ScheduleOptions& options) {
  const UnitFiles u = make_units(job, options);
  for (const std::string& name : {u.service_name, u.timer_name}) {
    const std::string path = options.unit_dir + "/" + name;
    const std::string owner = fs::exists(path) ? marked_job(path) : job.path;
    if (owner != job.path)
      fail(ErrorCategory::exists, "{}: exists and is not arche's unit of {} (it runs {})", path, job.path,
           owner.empty() ? "something else" : owner);
  }
  write_file_atomic(options.unit_dir + "/" + u.service_name,
                    {reinterpret_cast<const uint8_t*>(u.service.data()), u.service.size()});
  write_file_atomic(options.unit_dir + "/" + u.timer_name,
                    {reinterpret_cast<const uint8_t*>(u.timer.data()), u.timer.size()});
  if (options.systemctl) {
    systemctl({"daemon-reload"});
    systemctl({"enable", "--now", u.timer_name});
  }
  return u;
}

UnitFiles remove_units(const Job& job, const ScheduleOptions& options) {
  const UnitFiles u = make_units(job, options);
  const std::string timer = options.unit_dir + "/" + u.timer_name;
  if (!fs::exists(timer) || marked_job(timer) != job.path)
    fail(ErrorCategory::not_found, "{}: no timer of this job in {}", job.path, options.unit_dir);
  if (options.systemctl) systemctl({"disable", "--now", u.timer_name});
  fs::remove(timer);
  const std::string service = options.unit_dir + "/" + u.service_name;
  if (fs::exists(service) && marked_job(service) == job.path) fs::remove(service);
  sync_directory(options.unit_dir);
  if (options.systemctl) systemctl({"daemon-reload"});
  return u;
}

std::vector<InstalledJob> list_units(const std::string& unit_dir) {
  std::vector<InstalledJob> out;
  boost::system::error_code ec;
  for (fs::directory_iterator it(unit_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("arche-job-", 0) != 0 || it->path().extension() != ".timer") continue;
    InstalledJob j;
    j.timer_name = name;
    j.job_file = marked_job(it->path().string());
    if (j.job_file.empty()) continue;
    std::ifstream in(it->path().string());
    for (std::string line; std::getline(in, line);)
      if (line.rfind("OnCalendar=", 0) == 0) j.schedule = line.substr(11);
    out.push_back(std::move(j));
  }
  if (ec && ec != boost::system::errc::no_such_file_or_directory)
    fail(ErrorCategory::io, "{}: {}", unit_dir, ec.message());
  std::sort(out.begin(), out.end(), [](const InstalledJob& a, const InstalledJob& b) { return a.timer_name < b.timer_name; });
  return out;
}

}  // namespace arche::jobs
