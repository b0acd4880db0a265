#pragma once
// Config files on disk for the duration of one test, and the messages they fail with.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "conf/settings.hpp"

namespace conf_test {

class temp_config {
public:
    explicit temp_config(std::string_view text) {
        static int counter = 0;
        path_ = (std::filesystem::temp_directory_path() /
                 fmt::format("mqttd-conf-test-{}-{}.conf", ::getpid(), counter++))
                    .string();
        std::ofstream(path_, std::ios::binary) << text;
    }
    ~temp_config() { std::filesystem::remove(path_); }
    temp_config(const temp_config&) = delete;
    temp_config& operator=(const temp_config&) = delete;

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline conf::settings load(std::string_view text) {
    const temp_config file(text);
    return conf::load_settings({file.path()}, "testhost");
}

// The config_error that loading `text` throws, with the file's path written as FILE;
// "no error" when it loads.
inline std::string load_error(std::string_view text) {
    const temp_config file(text);
    try {
        conf::load_settings({file.path()}, "testhost");
    } catch (const conf::config_error& e) {
        std::string message = e.what();
        if (message.starts_with(file.path())) message.replace(0, file.path().size(), "FILE");
        return message;
    }
    return "no error";
}

}  // namespace conf_test
