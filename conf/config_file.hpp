#pragma once
// EMQX 4.x-style config files: one `key = value` per line, `#` starts a comment line.
// Several files may be given (`mqttd -c A -c B`); a key set again in a later file (or
// later in the same file) overrides the earlier value, and every value remembers the
// file and line it came from so that errors point at it.
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace conf {

struct origin {
    std::string file;
    unsigned line = 0;
};

// Start-up only. what() is "FILE:LINE: message" ("FILE: message" when no line applies,
// such as a file that cannot be read).
class config_error : public std::runtime_error {
public:
    config_error(const origin& where, std::string_view message);
};

struct entry {
    std::string key;
    std::string value;
    origin where;
};

// Every `key = value` line of one file's text, in order, duplicates included. Keys and
// values are trimmed; a value may hold `=`, `#` and spaces. A line without `=`, with an
// empty key or with whitespace inside the key is an error.
std::vector<entry> parse_config(std::string_view text, const std::string& file);

// The effective entries of several files: each key once, with its last value, in the
// order in which those winning lines appear.
std::vector<entry> read_config_files(const std::vector<std::string>& paths);

}  // namespace conf
