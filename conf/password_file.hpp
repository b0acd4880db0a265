#pragma once
// The password file named by auth.password_file: one `username:hash` per line (the
// forms of auth/password_hash.hpp), `#` comment lines and blank lines ignored. Start-up
// only.
#include <memory>
#include <string>
#include <unordered_map>

#include "auth/password_hash.hpp"

namespace conf {

// Throws config_error naming the file and line of a line without ':', with an empty
// user name or a hash of no known form, a user listed twice, or a file that cannot be
// read.
std::unordered_map<std::string, std::shared_ptr<const auth::password_hash>> read_password_file(
    const std::string& path);

}  // namespace conf
