#include "persistence/payload_codec.hpp"

#include "protocol/utf8.hpp"

namespace mqttd::persistence {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool hex_form(std::string_view text) noexcept {
    if (!text.starts_with("\\x") || text.size() % 2 != 0) return false;
    for (std::size_t i = 2; i < text.size(); ++i)
        if (hex_value(text[i]) < 0) return false;
    return true;
}

}  // namespace

bool payload_is_plain_text(std::string_view bytes) noexcept {
    // valid_mqtt_utf8: well-formed UTF-8 (no surrogates, nothing above U+10FFFF) and no NUL.
    return !bytes.starts_with("\\x") && mqtt::valid_mqtt_utf8(bytes);
}

std::string_view payload_to_text(std::string_view bytes, std::string& scratch) {
    if (payload_is_plain_text(bytes)) return bytes;
    return payload_to_hex(bytes, scratch);
}

std::string_view payload_to_hex(std::string_view bytes, std::string& scratch) {
    scratch.clear();
    scratch.reserve(2 + bytes.size() * 2);
    scratch += "\\x";
    for (unsigned char c : bytes) {
        scratch.push_back(hex_digits[c >> 4]);
        scratch.push_back(hex_digits[c & 0x0F]);
    }
    return scratch;
}

std::string payload_to_text(std::string_view bytes) {
    std::string scratch;
    auto v = payload_to_text(bytes, scratch);
    return v.data() == scratch.data() ? scratch : std::string(v);
}

std::string payload_from_text(std::string_view text) {
    if (!hex_form(text)) return std::string(text);
    std::string out;
    out.reserve((text.size() - 2) / 2);
    for (std::size_t i = 2; i < text.size(); i += 2)
        out.push_back(static_cast<char>(hex_value(text[i]) * 16 + hex_value(text[i + 1])));
    return out;
}

}  // namespace mqttd::persistence
