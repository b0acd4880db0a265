#include "conf/sql_template.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace conf {

sql_statement bind_variables(std::string_view sql, std::span<const std::string_view> known) {
    sql_statement out;
    for (std::size_t i = 0; i < sql.size();) {
        if (sql.substr(i, 2) == "$$") {
            out.text += "$$";
            i += 2;
        } else if (sql.substr(i, 2) == "${") {
            const auto close = sql.find('}', i + 2);
            if (close == std::string_view::npos)
                throw std::invalid_argument(fmt::format("unterminated ${{ in \"{}\"", sql));
            const auto name = sql.substr(i + 2, close - i - 2);
            if (std::find(known.begin(), known.end(), name) == known.end())
                throw std::invalid_argument(
                    fmt::format("unknown variable ${{{}}}; this hookpoint has: {}", name, fmt::join(known, ", ")));
            out.params.emplace_back(name);
            out.text += fmt::format("${}", out.params.size());
            i = close + 1;
        } else {
            out.text += sql[i++];
        }
    }
    return out;
}

}  // namespace conf
