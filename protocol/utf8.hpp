#pragma once
// Well-formed UTF-8 as MQTT requires it (spec 1.5.4): no ill-formed sequences, no
// surrogates, no U+0000.
#include <string_view>

namespace mqtt {

bool valid_mqtt_utf8(std::string_view s) noexcept;

}  // namespace mqtt
