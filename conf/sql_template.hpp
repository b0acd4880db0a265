#pragma once
// SQL actions name hook variables as ${name}; mqttd binds them as parameters, never
// pasting their text into SQL. Each ${name} becomes the next positional parameter ($1,
// $2, ... in order of appearance); a name used twice gets two parameters, so that
// PostgreSQL may infer a different type for each place.
//
// Substitution is textual, as in EMQX: a ${name} inside a quoted literal is replaced too
// (and then is no parameter to PostgreSQL), so write variables unquoted. `$$` opens or
// closes a dollar-quoted string and is copied as is: `$${x}` is not a variable.
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace conf {

struct sql_statement {
    std::string text;                 // with $1, $2, ...
    std::vector<std::string> params;  // the variable bound to each $N, in order
};

// Throws std::invalid_argument for an unterminated `${` or a name not in `known`.
sql_statement bind_variables(std::string_view sql, std::span<const std::string_view> known);

}  // namespace conf
