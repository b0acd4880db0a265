#include "conf/password_file.hpp"

#include <fstream>
#include <sstream>

#include "conf/config_file.hpp"

namespace conf {

std::unordered_map<std::string, std::string> read_password_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error({path, 0}, "cannot read the password file");
    std::unordered_map<std::string, std::string> users;
    std::string line;
    unsigned n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line.front() == '#') continue;
        auto colon = line.find(':');
        if (colon == std::string::npos || colon == 0)
            throw config_error({path, n}, "expected username:password");
        if (!users.emplace(line.substr(0, colon), line.substr(colon + 1)).second)
            throw config_error({path, n}, "user listed twice");
    }
    return users;
}

}  // namespace conf
