// The password forms real tools write, checked against digests made by another
// implementation (Python's hashlib) and by libxcrypt's bcrypt.
#include <doctest/doctest.h>

#include <string>

#include "auth/password_hash.hpp"

using auth::hash_scheme;

namespace {

auth::password_hash parsed(const std::string& stored) {
    std::string why;
    auto h = auth::parse_password_hash(stored, why);
    REQUIRE_MESSAGE(h, why);
    return *h;
}

std::string refusal(const std::string& stored) {
    std::string why;
    CHECK_FALSE(auth::parse_password_hash(stored, why));
    return why;
}

// hashlib.pbkdf2_hmac('sha512', b'wonderland', bytes(range(1, 13)), 101, 64)
const std::string pbkdf2 =
    "$7$101$AQIDBAUGBwgJCgsM$dQ2hqDlbnzIM1etFWTXPedF5Dn4Pv6xwXQBGHFDWUAjQMuH0ZW78O2KgIX8P5f6JKiURrRaRscZG7oM97L+qnA==";
// hashlib.sha512(b'wonderland' + bytes(range(1, 13)))
const std::string sha512 =
    "$6$AQIDBAUGBwgJCgsM$M5IFA1YdBdTq1BHhTLfSkiCX8KnuT+pSgVvCf0iGM81lypVXTeXN92G1j7TE3/3sUsa2BPJEZixWYR6T+PTGwA==";
const std::string bcrypt = "$2b$04$abcdefghijklmnopqrstuujZkTwHUiJ9XdZPwKfcfDo7dMp5DjlTu";

}  // namespace

TEST_CASE("password hash: mosquitto_passwd's $7$ (PBKDF2-HMAC-SHA512)") {
    const auto h = parsed(pbkdf2);
    CHECK(h.scheme == hash_scheme::pbkdf2_sha512);
    CHECK(h.iterations == 101);
    CHECK(h.salt.size() == 12);
    CHECK(auth::verify_password(h, "wonderland"));
    CHECK_FALSE(auth::verify_password(h, "wonderlanD"));
    CHECK_FALSE(auth::verify_password(h, ""));
    CHECK_FALSE(auth::verify_password(parsed("$7$102" + pbkdf2.substr(6)), "wonderland"));
}

TEST_CASE("password hash: mosquitto 1.x's $6$ (SHA-512 of password and salt)") {
    const auto h = parsed(sha512);
    CHECK(h.scheme == hash_scheme::sha512_salted);
    CHECK(auth::verify_password(h, "wonderland"));
    CHECK_FALSE(auth::verify_password(h, "wonderland "));
}

TEST_CASE("password hash: bcrypt $2a$, $2b$ and $2y$") {
    for (const char* prefix : {"$2a$", "$2b$", "$2y$"}) {
        CAPTURE(prefix);
        const auto h = parsed(prefix + bcrypt.substr(4));
        CHECK(h.scheme == hash_scheme::bcrypt);
        CHECK(auth::verify_password(h, "wonderland"));
        CHECK_FALSE(auth::verify_password(h, "Wonderland"));
        CHECK_FALSE(auth::verify_password(h, std::string("wonderland\0x", 12)));
    }
}

TEST_CASE("password hash: plaintext only when marked") {
    const auto h = parsed("$plain$wonderland");
    CHECK(h.scheme == hash_scheme::plain);
    CHECK(auth::verify_password(h, "wonderland"));
    CHECK_FALSE(auth::verify_password(h, "wonderlan"));
    CHECK_FALSE(auth::verify_password(h, "wonderlandx"));
    CHECK(auth::verify_password(parsed("$plain$"), ""));
    CHECK(refusal("wonderland").find("$plain$") != std::string::npos);
}

TEST_CASE("password hash: broken forms are refused with a reason") {
    CHECK(refusal("$7$101$AQIDBAUGBwgJCgsM$c2hvcnQ=").find("$7$") != std::string::npos);  // 5-byte digest
    CHECK(refusal("$7$0" + pbkdf2.substr(6)).find("iterations") != std::string::npos);
    CHECK(refusal("$7$x" + pbkdf2.substr(6)).find("iterations") != std::string::npos);
    CHECK(refusal("$7$99999999" + pbkdf2.substr(6)).find("iterations") != std::string::npos);
    CHECK(refusal("$6$!!!!$" + sha512.substr(20)).find("$6$") != std::string::npos);
    CHECK(refusal(bcrypt.substr(0, 59)).find("bcrypt") != std::string::npos);
    CHECK_FALSE(refusal("$1$md5crypt$").empty());
}
