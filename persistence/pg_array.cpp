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

}  // namespace mqttd::pg
