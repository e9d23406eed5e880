// The SFTP requests the store, its readers and its writers send, each one a few
// lines over SftpClient: open, stat, pipelined reads, close, and the OpenSSH
// extensions. Replies are decoded by sftp_packet.h; errors name the store and object.
#pragma once

#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "backup/sftp_client.h"

namespace arche::backup::sftp {

constexpr uint32_t kFileMode = 0600;  // repository files hold only ciphertext, still nobody else's business
constexpr uint32_t kDirMode = 0700;

// "a/b" of "a/b/c"; "/" of "/c"; "" of "c".
std::string parent_of(const std::string& path);
std::string base_of(std::string_view path);

std::future<Reply> send_path(SftpClient& c, uint8_t type, const std::string& path);
std::future<Reply> send_handle(SftpClient& c, uint8_t type, const std::string& handle);
// An SSH_FXP_EXTENDED request with one or two string arguments.
std::future<Reply> send_extended(SftpClient& c, const char* name, const std::string& a, const std::string* b = nullptr);
// The status code of a STATUS reply; SSH_FX_OK for any other reply.
uint32_t status_code(const Reply& reply);

std::string open_handle(SftpClient& c, const std::string& path, uint32_t flags, const std::string& what);
// nullopt when there is no such file.
std::optional<Attrs> stat_path(SftpClient& c, const std::string& path, const std::string& what);
// Reads out.size() bytes at offset with up to `window` READ requests in flight. A
// server may answer a READ with fewer bytes than asked: the rest is asked again.
void read_handle(SftpClient& c, const std::string& handle, uint64_t offset, std::span<uint8_t> out, unsigned window,
                 const std::string& what);
void close_handle(SftpClient& c, const std::string& handle, const std::string& what);
// Closes without waiting, for destructors and error paths.
void close_quietly(const std::shared_ptr<SftpClient>& c, const std::string& handle);

}  // namespace arche::backup::sftp
