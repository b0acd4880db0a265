#pragma once
// MQTT payloads are bytes; the shipped schema stores them in `payload text`. This codec
// makes the round trip byte-exact whatever the column type:
//
//  - bytea column: the bytes are bound raw (binary format) and read back raw;
//  - text column: a payload that is valid UTF-8, has no NUL byte and does not start
//    with `\x` is stored as it is; any other payload is stored as `\x` followed by the
//    lowercase hex of every byte (the look of PostgreSQL's bytea output). Reading does
//    the inverse: text that starts with `\x` followed by an even number of hex digits
//    is decoded to bytes; any other text is taken verbatim.
//
// Encoding never fails, so a payload can never make a batch fail.
#include <string>
#include <string_view>

namespace mqttd::persistence {

enum class payload_column { text, bytea };

// True when `bytes` is stored in a text column as it is (no hex form needed).
bool payload_is_plain_text(std::string_view bytes) noexcept;

// The text to store for `bytes`: `bytes` itself when plain, else the `\x` hex form,
// written into `scratch`. The view is valid while `bytes` and `scratch` are.
std::string_view payload_to_text(std::string_view bytes, std::string& scratch);
std::string payload_to_text(std::string_view bytes);

// Always the `\x` hex form, written into `scratch`: also bytea's text input form.
std::string_view payload_to_hex(std::string_view bytes, std::string& scratch);

// The payload bytes for a text column's value.
std::string payload_from_text(std::string_view text);

}  // namespace mqttd::persistence
