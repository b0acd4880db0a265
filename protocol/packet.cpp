#include "protocol/packet.hpp"

namespace mqtt {

// The variant's alternatives are declared in packet_type order.
packet_type type_of(const packet& p) noexcept {
    return static_cast<packet_type>(p.index() + 1);
}

}  // namespace mqtt
