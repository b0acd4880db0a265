#pragma once
// Everything mqttd reads from its config files, validated as a whole before start-up.
#include <string>
#include <string_view>
#include <vector>

#include "conf/backend_settings.hpp"
#include "conf/broker_settings.hpp"

namespace conf {

struct settings {
    broker_settings broker;
    backend_settings backend;
};

// From already-read entries; `hostname` gives the default node.name.
settings parse_settings(const std::vector<entry>& entries, std::string_view hostname);

// Reads `files` in order (later ones override earlier ones key by key), then validates
// everything; the first problem throws config_error naming its file and line.
settings load_settings(const std::vector<std::string>& files, std::string_view hostname);

}  // namespace conf
