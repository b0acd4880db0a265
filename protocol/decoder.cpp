#include "protocol/decoder.hpp"

#include <algorithm>
#include <cstring>

#include "protocol/fixed_header.hpp"
#include "protocol/varint.hpp"

namespace mqtt {

namespace {

// A buffer grown past this (well above a socket read) by a large packet is released once
// it is drained, so an idle connection does not keep its peak size.
constexpr std::size_t keep_capacity = 256 * 1024;
constexpr std::size_t min_capacity = 512;

}  // namespace

decoder::decoder(std::uint32_t max_packet_size) : max_packet_size_(max_packet_size) {}

void decoder::feed(std::string_view bytes) {
    if (bytes.empty()) return;
    std::memcpy(prepare(bytes.size()).data(), bytes.data(), bytes.size());
    commit(bytes.size());
}

std::span<char> decoder::prepare(std::size_t n) {
    if (buf_.size() - end_ < n) {
        const auto live = end_ - begin_;
        // The unconsumed bytes are moved to the front only when no more of them remain
        // than were consumed ahead of them, so moving costs O(1) amortized per byte;
        // otherwise the buffer doubles.
        if (begin_ >= live && buf_.size() - live >= n) {
            std::memmove(buf_.data(), buf_.data() + begin_, live);
        } else {
            std::string bigger(std::max({live + n, 2 * buf_.size(), min_capacity}), '\0');
            std::memcpy(bigger.data(), buf_.data() + begin_, live);
            buf_.swap(bigger);
        }
        begin_ = 0;
        end_ = live;
    }
    return {buf_.data() + end_, n};
}

void decoder::commit(std::size_t n) noexcept { end_ = std::min(end_ + n, buf_.size()); }

void decoder::trim(std::size_t keep) noexcept {
    if (begin_ != end_ || buf_.size() <= keep) return;
    std::string().swap(buf_);
    begin_ = end_ = 0;
}

std::optional<packet> decoder::next(std::error_code& ec) {
    if (failed_) {
        ec = failed_;
        return std::nullopt;
    }
    ec.clear();
    const std::string_view in(buf_.data() + begin_, end_ - begin_);
    if (in.empty()) return std::nullopt;

    const auto fail = [&](reason_code rc) {
        failed_ = ec = rc;
        return std::nullopt;
    };
    const auto first = static_cast<std::uint8_t>(in[0]);
    if (const auto rc = check_fixed_header(first, version_); rc != reason_code::success) return fail(rc);
    const auto length = get_varint(in.substr(1));
    if (length.status == varint_status::incomplete) return std::nullopt;
    if (length.status == varint_status::malformed) return fail(reason_code::malformed_packet);
    // Checked before the body arrives: an oversized packet is refused without waiting for it.
    const auto total = std::uint64_t{1} + length.length + length.value;
    if (total > max_packet_size_) return fail(reason_code::packet_too_large);
    if (in.size() < total) return std::nullopt;

    auto p = decode_body(first, in.substr(1 + length.length, length.value), version_, ec);
    if (ec) {
        failed_ = ec;
        return std::nullopt;
    }
    begin_ += total;
    if (begin_ == end_) {
        begin_ = end_ = 0;
        if (buf_.size() > keep_capacity) std::string().swap(buf_);
    }
    return p;
}

}  // namespace mqtt
