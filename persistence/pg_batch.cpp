#include "persistence/pg_batch.hpp"

#include <charconv>
#include <limits>
#include <stdexcept>

namespace mqttd::pg {

batch& batch::execute(std::string_view statement, std::initializer_list<param> params, format result) {
    return add(true, statement, {params.begin(), params.size()}, result);
}
batch& batch::execute(std::string_view statement, std::span<const param> params, format result) {
    return add(true, statement, params, result);
}
batch& batch::query(std::string_view sql, std::initializer_list<param> params, format result) {
    return add(false, sql, {params.begin(), params.size()}, result);
}
batch& batch::query(std::string_view sql, std::span<const param> params, format result) {
    return add(false, sql, params, result);
}

batch& batch::sync() {
    if (!steps_.empty()) steps_.back().sync_after = true;
    return *this;
}

void batch::clear() noexcept {
    steps_.clear();
    slots_.clear();
    arena_.clear();
}

std::uint32_t batch::append(std::string_view bytes, bool terminate) {
    // Offsets are 32-bit; libpq itself takes int lengths, so a larger batch could not be
    // sent anyway.
    if (arena_.size() + bytes.size() + 1 > std::numeric_limits<std::int32_t>::max())
        throw std::length_error("pg::batch larger than 2 GiB");
    auto offset = static_cast<std::uint32_t>(arena_.size());
    arena_.append(bytes);
    if (terminate) arena_.push_back('\0');
    return offset;
}

batch& batch::add(bool prepared, std::string_view text, std::span<const param> params, format result) {
    if (params.size() > 65535) throw std::length_error("pg::batch: more than 65535 parameters in one statement");
    step s;
    s.prepared = prepared;
    s.result = result;
    s.text_offset = append(text, true);
    s.first_param = static_cast<std::uint32_t>(slots_.size());
    s.param_count = static_cast<std::uint32_t>(params.size());
    for (const param& p : params) {
        slot sl;
        switch (p.kind_) {
        case param::kind::null: sl.null = true; break;
        case param::kind::text:
            // libpq reads text parameters up to their NUL; one with a NUL inside goes in
            // binary format instead, so that the server rejects it rather than truncates it.
            sl.binary = p.data_.find('\0') != std::string_view::npos;
            sl.offset = append(p.data_, true);
            sl.length = static_cast<std::uint32_t>(p.data_.size());
            break;
        case param::kind::binary:
            sl.binary = true;
            sl.bytea = true;
            sl.offset = append(p.data_, false);
            sl.length = static_cast<std::uint32_t>(p.data_.size());
            break;
        case param::kind::signed_int:
        case param::kind::unsigned_int: {
            char buf[24];
            auto r = p.kind_ == param::kind::signed_int ? std::to_chars(buf, buf + sizeof buf, p.int_)
                                                        : std::to_chars(buf, buf + sizeof buf, p.uint_);
            std::string_view digits(buf, static_cast<std::size_t>(r.ptr - buf));
            sl.offset = append(digits, true);
            sl.length = static_cast<std::uint32_t>(digits.size());
            break;
        }
        }
        slots_.push_back(sl);
    }
    steps_.push_back(s);
    return *this;
}

}  // namespace mqttd::pg
