#pragma once
// The password file named by auth.password_file: one `username:password` per line,
// `#` comment lines and blank lines ignored. Start-up only.
#include <string>
#include <unordered_map>

namespace conf {

// Throws config_error naming the file and line of a line without ':' or with an empty
// user name, a user listed twice, or a file that cannot be read.
std::unordered_map<std::string, std::string> read_password_file(const std::string& path);

}  // namespace conf
