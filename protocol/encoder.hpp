#pragma once
// Packets to bytes. A packet that cannot be expressed in the given version (for example a
// 5.0-only reason code in 3.1.1) is encoded in the nearest legal form: 3.1/3.1.1 drop
// properties, ack and DISCONNECT reason codes, UNSUBACK reason codes and a password
// without a user name; map CONNACK reasons with to_v311_connack and SUBACK failures to
// 0x80. A CONNECT is encoded in its own `version`; AUTH always in the 5.0 form.
// What no form can express is refused, never cut to fit: a string or binary value longer
// than its 2-byte length prefix can say, a body longer than the remaining length can say.
// For every packet the decoder returns, encode() reproduces the bytes it came from.
#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>

#include "protocol/packet.hpp"

namespace mqtt {

// The longest UTF-8 string or binary value (spec 1.5.4, 1.5.6).
inline constexpr std::size_t max_string_size = 0xFFFF;

enum class encode_error {
    string_too_long = 1,  // a string, binary value or string pair half over max_string_size
    packet_too_large,     // the body is over the Variable Byte Integer's 268,435,455 bytes
};

const std::error_category& encode_category() noexcept;

inline std::error_code make_error_code(encode_error e) noexcept { return {static_cast<int>(e), encode_category()}; }

// Appends the packet's bytes to out; when the packet cannot be encoded, sets ec and
// leaves out as it was.
void encode(const packet& p, protocol_version v, std::string& out, std::error_code& ec);
// As above, but a packet that cannot be encoded throws std::system_error: for packets the
// caller knows fit, where a refusal is a bug.
void encode(const packet& p, protocol_version v, std::string& out);
std::string encode(const packet& p, protocol_version v);

// The whole packet's size on the wire (fixed header included), without encoding it; 0 and
// ec set when it cannot be encoded. The overload without ec throws as encode() does.
std::size_t encoded_size(const packet& p, protocol_version v, std::error_code& ec);
std::size_t encoded_size(const packet& p, protocol_version v);

}  // namespace mqtt

template <>
struct std::is_error_code_enum<mqtt::encode_error> : std::true_type {};
