#include "auth/password_hash.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <vector>

namespace auth {
namespace {

// Standard base64 with padding, as mosquitto_passwd writes it.
std::optional<std::string> base64_decode(std::string_view in) {
    if (in.empty() || in.size() % 4 != 0) return std::nullopt;
    std::string out(in.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    if (n < 0) return std::nullopt;
    // EVP_DecodeBlock counts the padding as decoded zero bytes.
    std::size_t pad = 0;
    if (in.back() == '=') ++pad;
    if (in.size() >= 2 && in[in.size() - 2] == '=') ++pad;
    out.resize(static_cast<std::size_t>(n) - pad);
    return out;
}

std::array<unsigned char, 64> sha512(std::string_view a, std::string_view b) {
    std::array<unsigned char, 64> out{};
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    unsigned len = 0;
    EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr);
    EVP_DigestUpdate(ctx, a.data(), a.size());
    EVP_DigestUpdate(ctx, b.data(), b.size());
    EVP_DigestFinal_ex(ctx, out.data(), &len);
    EVP_MD_CTX_free(ctx);
    return out;
}

bool same(const void* a, const void* b, std::size_t n) { return CRYPTO_memcmp(a, b, n) == 0; }

// `$<id>$<fields...>` split on '$'.
std::vector<std::string_view> fields(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t pos = 1;
    while (pos <= s.size()) {
        const auto next = s.find('$', pos);
        out.push_back(s.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
        if (next == std::string_view::npos) break;
        pos = next + 1;
    }
    return out;
}

}  // namespace

std::optional<password_hash> parse_password_hash(std::string_view stored, std::string& why) {
    password_hash h;
    if (stored.starts_with("$plain$")) {
        h.scheme = hash_scheme::plain;
        h.digest = std::string(stored.substr(7));
        return h;
    }
    if (stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$")) {
        // $2b$NN$ then 22 characters of salt and 31 of hash.
        if (stored.size() != 60 || stored[6] != '$') {
            why = "a bcrypt hash has 60 characters: $2b$NN$ then salt and hash";
            return std::nullopt;
        }
        h.scheme = hash_scheme::bcrypt;
        h.digest = std::string(stored);
        return h;
    }
    const auto f = fields(stored);
    if (stored.starts_with("$6$") && f.size() == 3) {
        auto salt = base64_decode(f[1]);
        auto digest = base64_decode(f[2]);
        if (!salt || !digest || digest->size() != 64) {
            why = "a $6$ hash is $6$<base64 salt>$<base64 SHA-512>";
            return std::nullopt;
        }
        h.scheme = hash_scheme::sha512_salted;
        h.salt = std::move(*salt);
        h.digest = std::move(*digest);
        return h;
    }
    if (stored.starts_with("$7$") && f.size() == 4) {
        unsigned iterations = 0;
        const auto [end, ec] = std::from_chars(f[1].data(), f[1].data() + f[1].size(), iterations);
        auto salt = base64_decode(f[2]);
        auto digest = base64_decode(f[3]);
        if (ec != std::errc{} || end != f[1].data() + f[1].size() || iterations == 0 || iterations > 10'000'000 || !salt || !digest ||
            digest->size() != 64) {
            why = "a $7$ hash is $7$<iterations (1 to 10,000,000)>$<base64 salt>$<base64 PBKDF2-SHA512>";
            return std::nullopt;
        }
        h.scheme = hash_scheme::pbkdf2_sha512;
        h.iterations = iterations;
        h.salt = std::move(*salt);
        h.digest = std::move(*digest);
        return h;
    }
    why = "not a password hash mqttd knows ($7$, $6$, $2a$/$2b$/$2y$); a plaintext password must be written "
          "$plain$<password>";
    return std::nullopt;
}

bool verify_password(const password_hash& h, std::string_view password) {
    switch (h.scheme) {
        case hash_scheme::plain: {
            // Digests of both, so that the comparison does not depend on where they differ
            // nor on their lengths.
            const auto a = sha512(password, {});
            const auto b = sha512(h.digest, {});
            return same(a.data(), b.data(), a.size());
        }
        case hash_scheme::sha512_salted: {
            const auto d = sha512(password, h.salt);
            return same(d.data(), h.digest.data(), d.size());
        }
        case hash_scheme::pbkdf2_sha512: {
            std::array<unsigned char, 64> d{};
            if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                                  reinterpret_cast<const unsigned char*>(h.salt.data()), static_cast<int>(h.salt.size()),
                                  static_cast<int>(h.iterations), EVP_sha512(), static_cast<int>(d.size()),
                                  d.data()) != 1)
                return false;
            return same(d.data(), h.digest.data(), d.size());
        }
        case hash_scheme::bcrypt: {
            // crypt takes a C string: a password with a NUL byte in it cannot be the one hashed.
            if (password.find('\0') != std::string_view::npos) return false;
            crypt_data data{};
            const std::string phrase(password);
            const char* out = crypt_rn(phrase.c_str(), h.digest.c_str(), &data, sizeof data);
            return out && std::string_view(out).size() == h.digest.size() && same(out, h.digest.data(), h.digest.size());
        }
    }
    return false;
}

}  // namespace auth
