#pragma once
// Packets to bytes. Encoding is total: a packet that cannot be expressed in the given
// version (for example a 5.0-only reason code in 3.1.1) is encoded in the nearest legal form.
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
