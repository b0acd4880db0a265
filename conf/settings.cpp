#include "conf/settings.hpp"

namespace conf {

settings parse_settings(const std::vector<entry>& entries, std::string_view hostname) {
    return {parse_broker_settings(entries, hostname), parse_backend_settings(entries)};
}

settings load_settings(const std::vector<std::string>& files, std::string_view hostname) {
    return parse_settings(read_config_files(files), hostname);
}

}  // namespace conf
