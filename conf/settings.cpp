#include "conf/settings.hpp"

namespace conf {

settings parse_settings(const std::vector<entry>& entries, std::string_view hostname) {
    settings s{parse_broker_settings(entries, hostname), parse_backend_settings(entries)};
    s.backend.session_queue_len = s.broker.max_mqueue_len;
    s.backend.session_queue_bytes = s.broker.max_mqueue_bytes;
    return s;
}

settings load_settings(const std::vector<std::string>& files, std::string_view hostname) {
    return parse_settings(read_config_files(files), hostname);
}

}  // namespace conf
