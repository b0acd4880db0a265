#include "persistence/pg_array.hpp"

#include <algorithm>
#include <charconv>

namespace mqttd::pg {

void array_literal::clear() {
    text_.assign(1, '{');
    closed_ = false;
}

void array_literal::separate() {
    if (closed_) text_.pop_back();
    closed_ = false;
    if (text_.size() > 1) text_ += ',';
}

void array_literal::add(std::string_view element) {
    separate();
    const auto escapes =
        static_cast<std::size_t>(std::count_if(element.begin(), element.end(), [](char c) { return c == '"' || c == '\\'; }));
    text_.reserve(text_.size() + element.size() + escapes + 3);  // and the separator of the next one
    text_ += '"';
    if (escapes == 0) {
        text_.append(element);
    } else {
        for (char c : element) {
            if (c == '"' || c == '\\') text_ += '\\';
            text_ += c;
        }
    }
    text_ += '"';
}

void array_literal::add(std::int64_t element) {
    separate();
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, element);
    text_.append(buf, r.ptr);
}

void array_literal::add_null() {
    separate();
    text_ += "NULL";
}

std::string_view array_literal::str() {
    if (!closed_) text_ += '}';
    closed_ = true;
    return text_;
}

// Header: ndim, has-nulls flag, element type, then per dimension its length and lower
// bound; then each element as its length (-1: NULL) and bytes. All big-endian.
namespace {
constexpr std::size_t header_size = 20;
constexpr std::int64_t unix_to_postgres_epoch_us = 946'684'800'000'000;  // 2000-01-01 - 1970-01-01
}  // namespace

void binary_array::clear() {
    data_.assign(header_size, '\0');
    count_ = 0;
    has_null_ = false;
}

void binary_array::put32(std::uint32_t v) {
    const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
    data_.append(b, 4);
}

void binary_array::put64(std::uint64_t v) {
    put32(static_cast<std::uint32_t>(v >> 32));
    put32(static_cast<std::uint32_t>(v));
}

void binary_array::add(std::string_view bytes) {
    put32(static_cast<std::uint32_t>(bytes.size()));
    data_.append(bytes);
    ++count_;
}

void binary_array::add(std::int64_t v) {
    put32(8);
    put64(static_cast<std::uint64_t>(v));
    ++count_;
}

void binary_array::add(std::chrono::system_clock::time_point t) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
    add(static_cast<std::int64_t>(us - unix_to_postgres_epoch_us));
}

void binary_array::add_null() {
    put32(0xFFFFFFFFu);
    has_null_ = true;
    ++count_;
}

std::string_view binary_array::bytes() {
    auto set32 = [this](std::size_t at, std::uint32_t v) {
        for (int i = 0; i < 4; ++i) data_[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
    };
    set32(0, count_ == 0 ? 0 : 1);  // an empty array has no dimension
    set32(4, has_null_ ? 1 : 0);
    set32(8, element_);
    if (count_ == 0) return std::string_view(data_).substr(0, 12);
    set32(12, count_);
    set32(16, 1);
    return data_;
}

}  // namespace mqttd::pg
