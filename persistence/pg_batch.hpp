#pragma once
// A batch: the steps that one call to connection::run() sends in one pipeline, and the
// parameters they bind. Parameters are copied into one buffer as they are added, so a
// batch of thousands of rows costs a handful of allocations, and the caller's strings
// need not outlive the call that added them.
//
// Steps between two sync points form one implicit transaction on the server: when one
// of them fails, the others of that segment are rolled back and the later ones report
// errc::pipeline_aborted. A batch always ends with a sync point. BEGIN/COMMIT steps
// make an explicit transaction instead; sync() after each step isolates rows from one
// another (one commit per row) while keeping one round trip.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mqttd::pg {

using oid = unsigned int;

// Type OIDs for prepare() and for binary parameters.
namespace oids {
inline constexpr oid unspecified = 0;  // the server infers the type from the SQL
inline constexpr oid bool_ = 16;
inline constexpr oid bytea = 17;
inline constexpr oid int8 = 20;
inline constexpr oid int4 = 23;
inline constexpr oid text = 25;
inline constexpr oid varchar = 1043;
inline constexpr oid timestamp = 1114;
inline constexpr oid timestamptz = 1184;
}  // namespace oids

enum class format : int { text = 0, binary = 1 };

// One bound parameter, as a view: text, NULL, an integer (sent as decimal text), or raw
// bytes (binary format, e.g. for bytea). Never pasted into SQL.
class param {
public:
    param(std::nullopt_t) noexcept : kind_(kind::null) {}
    param(std::string_view text) noexcept : kind_(kind::text), data_(text) {}
    param(const char* text) noexcept : kind_(kind::text), data_(text) {}
    param(const std::string& text) noexcept : kind_(kind::text), data_(text) {}
    param(std::optional<std::string_view> text) noexcept
        : kind_(text ? kind::text : kind::null), data_(text.value_or(std::string_view{})) {}
    param(bool b) noexcept : kind_(kind::text), data_(b ? "1" : "0") {}
    template <std::signed_integral T>
    param(T v) noexcept : kind_(kind::signed_int), int_(static_cast<std::int64_t>(v)) {}
    template <std::unsigned_integral T>
    param(T v) noexcept : kind_(kind::unsigned_int), uint_(static_cast<std::uint64_t>(v)) {}

    static param binary(std::string_view bytes) noexcept { return param(kind::binary, bytes); }
    static param binary(std::span<const std::byte> bytes) noexcept {
        return param(kind::binary, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    }
    static param binary(std::span<const std::uint8_t> bytes) noexcept {
        return param(kind::binary, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    }

private:
    friend class batch;
    enum class kind : std::uint8_t { null, text, binary, signed_int, unsigned_int };
    param(kind k, std::string_view d) noexcept : kind_(k), data_(d) {}

    kind kind_;
    std::string_view data_;
    std::int64_t int_ = 0;
    std::uint64_t uint_ = 0;
};

class batch {
public:
    // Executes a statement registered with connection::prepare() / pool::prepare().
    batch& execute(std::string_view statement, std::initializer_list<param> params = {},
                   format result = format::text);
    batch& execute(std::string_view statement, std::span<const param> params, format result = format::text);
    // Executes one SQL statement with $1, $2... bound to `params`. Binary parameters are
    // declared bytea; the others' types are inferred by the server.
    batch& query(std::string_view sql, std::initializer_list<param> params = {}, format result = format::text);
    batch& query(std::string_view sql, std::span<const param> params, format result = format::text);

    batch& begin() { return query("BEGIN"); }
    batch& commit() { return query("COMMIT"); }
    batch& rollback() { return query("ROLLBACK"); }
    // Ends the current implicit transaction after the last step added so far.
    batch& sync();

    std::size_t size() const noexcept { return steps_.size(); }
    bool empty() const noexcept { return steps_.empty(); }
    // Bytes of SQL, names and parameters held: lets a batcher bound its memory.
    std::size_t bytes() const noexcept { return arena_.size(); }
    // Empties the batch and keeps its buffers for the next one.
    void clear() noexcept;

private:
    friend class connection;

    struct slot {  // one parameter inside arena_
        std::uint32_t offset = 0;
        std::uint32_t length = 0;
        bool null = false;
        bool binary = false;  // sent in binary format
        bool bytea = false;   // declared bytea in ad-hoc queries (param::binary)
    };
    struct step {
        bool prepared = false;  // text is a statement name (true) or SQL (false)
        bool sync_after = false;
        format result = format::text;
        std::uint32_t text_offset = 0;  // NUL-terminated inside arena_
        std::uint32_t first_param = 0;
        std::uint32_t param_count = 0;
    };

    batch& add(bool prepared, std::string_view text, std::span<const param> params, format result);
    std::uint32_t append(std::string_view bytes, bool terminate);

    std::vector<step> steps_;
    std::vector<slot> slots_;
    std::string arena_;
};

}  // namespace mqttd::pg
