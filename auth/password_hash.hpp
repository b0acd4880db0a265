#pragma once
// A password as a password file stores it, and checking a given password against it.
//
// The forms are the ones real tools write: mosquitto_passwd's `$7$` (PBKDF2-HMAC-SHA512,
// mosquitto 2.x) and `$6$` (SHA-512 of password and salt, mosquitto 1.x), bcrypt's
// `$2a$`, `$2b$` and `$2y$` (htpasswd -B), and plaintext only when marked `$plain$`.
#include <optional>
#include <string>
#include <string_view>

namespace auth {

enum class hash_scheme { plain, sha512_salted, pbkdf2_sha512, bcrypt };

struct password_hash {
    hash_scheme scheme = hash_scheme::plain;
    unsigned iterations = 0;  // PBKDF2
    std::string salt;         // decoded (PBKDF2, SHA-512)
    std::string digest;       // decoded (PBKDF2, SHA-512); the password (plain); the whole crypt string (bcrypt)
};

// The stored form parsed, or nullopt with `why` set.
std::optional<password_hash> parse_password_hash(std::string_view stored, std::string& why);

// Whether `password` matches. Digests are compared in constant time; bcrypt and PBKDF2
// cost what their stored cost says, so callers keep them off I/O threads.
bool verify_password(const password_hash& h, std::string_view password);

}  // namespace auth
