#pragma once
// Incremental, sans-I/O decoder: bytes go in in chunks of any size, whole validated
// packets come out. The remaining length is checked against the maximum packet size as
// soon as the fixed header is read, before the body is waited for.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "protocol/packet.hpp"

namespace mqtt {

// The largest packet the wire format can express: 1 + 4 + 268,435,455 bytes.
inline constexpr std::uint32_t max_remaining_length = 268'435'455;
inline constexpr std::uint32_t max_packet_size_limit = max_remaining_length + 5;

class decoder {
public:
    explicit decoder(std::uint32_t max_packet_size = max_packet_size_limit);

    // Until a version is set, only a CONNECT can be decoded, and decoding it sets the
    // version. A client-side decoder sets the version it connected with.
    void set_version(protocol_version v) noexcept { version_ = v; }
    // Known as soon as a CONNECT's protocol level byte has been read, even when the rest
    // of that CONNECT turns out malformed (so the right CONNACK form can be chosen).
    // Stays unknown for an unsupported protocol name or level; a later CONNECT (a
    // Protocol Error the broker handles) does not change it.
    std::optional<protocol_version> version() const noexcept { return version_; }
    void set_max_packet_size(std::uint32_t n) noexcept { max_packet_size_ = n; }

    void feed(std::string_view bytes);
    // Zero-copy path for socket reads: write into prepare(n), then commit what was read.
    std::span<char> prepare(std::size_t n);
    void commit(std::size_t n) noexcept;

    // The next complete packet; nullopt with !ec when more bytes are needed. On a
    // violation ec holds the reason_code the specification prescribes and the decoder
    // stays failed (every later call returns the same error). The first byte is checked
    // as soon as it arrives, and the size limit as soon as the remaining length has.
    std::optional<packet> next(std::error_code& ec);

    std::size_t buffered() const noexcept { return end_ - begin_; }
    // Frees the buffer when nothing is buffered and it holds more than `keep` bytes, so
    // an idle connection does not keep the largest read it ever made.
    void trim(std::size_t keep) noexcept;

private:
    std::string buf_;
    std::size_t begin_ = 0;  // first unconsumed byte
    std::size_t end_ = 0;    // one past the last committed byte
    std::uint32_t max_packet_size_;
    std::optional<protocol_version> version_;
    std::error_code failed_;
};

// Decodes one packet body (the bytes after the fixed header). Exposed for tests and tools.
std::optional<packet> decode_body(std::uint8_t first_byte, std::string_view body,
                                  std::optional<protocol_version>& version, std::error_code& ec);

}  // namespace mqtt
