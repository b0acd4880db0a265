// auth.password_file: the hashes real tools write, and a bad line named by file and line.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "conf/config_file.hpp"
#include "conf/password_file.hpp"

namespace {

struct temp_file {
    std::filesystem::path path;
    explicit temp_file(const std::string& text)
        : path(std::filesystem::temp_directory_path() / ("mqttd-passwd-" + std::to_string(std::rand()))) {
        std::ofstream(path) << text;
    }
    ~temp_file() { std::filesystem::remove(path); }
};

std::string error_of(const std::string& text) {
    temp_file f(text);
    try {
        conf::read_password_file(f.path.string());
    } catch (const conf::config_error& e) {
        const std::string what = e.what();
        return what.substr(f.path.string().size());  // without the path: ":LINE: ..."
    }
    return "no error";
}

}  // namespace

TEST_CASE("password file: hashed and marked plaintext entries") {
    temp_file f("# users\n\nalice:$plain$wonderland\r\n"
                "bob:$2b$04$abcdefghijklmnopqrstuujZkTwHUiJ9XdZPwKfcfDo7dMp5DjlTu\n");
    const auto users = conf::read_password_file(f.path.string());
    REQUIRE(users.size() == 2);
    CHECK(auth::verify_password(*users.at("alice"), "wonderland"));
    CHECK(users.at("bob")->scheme == auth::hash_scheme::bcrypt);
    CHECK(auth::verify_password(*users.at("bob"), "wonderland"));
}

TEST_CASE("password file: a bad line is a start-up error naming its line") {
    CHECK(error_of("alice:$plain$a\nbob:builder\n").starts_with(":2: not a password hash"));
    CHECK(error_of("alice\n").starts_with(":1: expected username:hash"));
    CHECK(error_of(":$plain$x\n").starts_with(":1: expected username:hash"));
    CHECK(error_of("a:$plain$x\n\na:$plain$y\n").starts_with(":3: user listed twice"));
    CHECK(error_of("a:$7$1$AA==$AA==\n").starts_with(":1: a $7$ hash"));
}
