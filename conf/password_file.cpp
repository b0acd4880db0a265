#include "conf/password_file.hpp"

#include <fstream>
#include <sstream>

#include "conf/config_file.hpp"

namespace conf {

std::unordered_map<std::string, std::shared_ptr<const auth::password_hash>> read_password_file(
    const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error({path, 0}, "cannot read the password file");
    std::unordered_map<std::string, std::shared_ptr<const auth::password_hash>> users;
    std::string line;
    unsigned n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line.front() == '#') continue;
        auto colon = line.find(':');
        if (colon == std::string::npos || colon == 0)
            throw config_error({path, n}, "expected username:hash");
        std::string why;
        auto hash = auth::parse_password_hash(std::string_view(line).substr(colon + 1), why);
        if (!hash) throw config_error({path, n}, why);
        if (!users.emplace(line.substr(0, colon), std::make_shared<const auth::password_hash>(std::move(*hash))).second)
            throw config_error({path, n}, "user listed twice");
    }
    return users;
}

}  // namespace conf
