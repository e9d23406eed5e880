// Not a test: the servers of bench/offsite.sh. Starts the test fixtures' OpenSSH sshd
// and one-node Ceph radosgw on 127.0.0.1, writes a shell file of variables that point
// arche, restic and rclone at them, and keeps them up until stdin closes or SIGTERM.
//
//   offsite_servers ENV_FILE
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "tests/backup/rgw_fixture.h"
#include "tests/backup/sshd_fixture.h"

using namespace arche::test;

namespace {

volatile sig_atomic_t stop = 0;

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: offsite_servers ENV_FILE\n");
    return 2;
  }
  try {
    struct sigaction sa {};
    sa.sa_handler = [](int) { stop = 1; };  // no SA_RESTART: the read below returns
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    SshServer sshd;
    RgwCluster& rgw = RgwCluster::shared();
    rgw.store("arche-offsite");
    rgw.store("restic-offsite");
    rgw.store("rclone-offsite");
    std::map<std::string, std::string> env = sshd.environment();
    for (const auto& [k, v] : rgw.environment()) env[k] = v;
    env["OFFSITE_SFTP_DIR"] = sshd.data_dir();
    env["OFFSITE_SFTP_URL"] = sshd.url("");
    env["OFFSITE_SFTP_USER"] = sshd.user();
    env["OFFSITE_SFTP_PORT"] = std::to_string(sshd.port());
    env["OFFSITE_S3_ENDPOINT"] = rgw.endpoint();
    // restic reaches the sshd through ssh(1) with the same key and known_hosts.
    env["OFFSITE_RESTIC_SSH"] = "ssh -p " + std::to_string(sshd.port()) + " -i " + sshd.user_key_file() +
                                " -o UserKnownHostsFile=" + sshd.known_hosts_file() +
                                " -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes " + sshd.user() +
                                "@127.0.0.1 -s sftp";
    env["RCLONE_CONFIG_OFFSFTP_TYPE"] = "sftp";
    env["RCLONE_CONFIG_OFFSFTP_HOST"] = "127.0.0.1";
    env["RCLONE_CONFIG_OFFSFTP_PORT"] = std::to_string(sshd.port());
    env["RCLONE_CONFIG_OFFSFTP_USER"] = sshd.user();
    env["RCLONE_CONFIG_OFFSFTP_KEY_FILE"] = sshd.user_key_file();
    env["RCLONE_CONFIG_OFFSFTP_KNOWN_HOSTS_FILE"] = sshd.known_hosts_file();
    env["RCLONE_CONFIG_OFFSFTP_SHELL_TYPE"] = "none";
    env["RCLONE_CONFIG_OFFSFTP_DISABLE_HASHCHECK"] = "true";
    env["RCLONE_CONFIG_OFFS3_TYPE"] = "s3";
    env["RCLONE_CONFIG_OFFS3_PROVIDER"] = "Ceph";
    env["RCLONE_CONFIG_OFFS3_ENDPOINT"] = "http://" + rgw.endpoint();
    env["RCLONE_CONFIG_OFFS3_ACCESS_KEY_ID"] = rgw.access_key();
    env["RCLONE_CONFIG_OFFS3_SECRET_ACCESS_KEY"] = rgw.environment().at("AWS_SECRET_ACCESS_KEY");
    {
      const std::string tmp = std::string(argv[1]) + ".tmp";
      std::ofstream out(tmp, std::ios::trunc);
      for (const auto& [k, v] : env) out << "export " << k << "=" << quoted(v) << "\n";
      out.close();
      if (!out || std::rename(tmp.c_str(), argv[1]) != 0) throw std::runtime_error("cannot write " + std::string(argv[1]));
    }
    char c;
    while (!stop && ::read(0, &c, 1) > 0) {
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "offsite_servers: %s\n", e.what());
    return 1;
  }
}
