#pragma once
// Well-formed UTF-8 as MQTT requires it (spec 1.5.4): no ill-formed sequences, no
// surrogates, no U+0000.
#include <string_view>

namespace mqtt {

bool valid_mqtt_utf8(std::string_view s) noexcept;

// Well-formed UTF-8 as Unicode defines it, U+0000 included: what a payload with Payload
// Format Indicator 1 must be (spec 3.3.2.3.2).
bool valid_utf8(std::string_view s) noexcept;

}  // namespace mqtt
