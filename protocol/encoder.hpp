#pragma once
// Packets to bytes. Encoding is total: a packet that cannot be expressed in the given
// version (for example a 5.0-only reason code in 3.1.1) is encoded in the nearest legal form:
// 3.1/3.1.1 drop properties, ack and DISCONNECT reason codes, UNSUBACK reason codes and a
// password without a user name; map CONNACK reasons with to_v311_connack and SUBACK
// failures to 0x80. A CONNECT is encoded in its own `version`; AUTH always in the 5.0
// form. Strings longer than 65,535 bytes are cut to fit their length prefix.
// For every packet the decoder returns, encode() reproduces the bytes it came from.
#include <cstdint>
#include <string>

#include "protocol/packet.hpp"

namespace mqtt {

// Appends the packet's bytes to out.
void encode(const packet& p, protocol_version v, std::string& out);
std::string encode(const packet& p, protocol_version v);

// The whole packet's size on the wire (fixed header included), without encoding it.
std::size_t encoded_size(const packet& p, protocol_version v);

}  // namespace mqtt
