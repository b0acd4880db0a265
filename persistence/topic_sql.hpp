#pragma once
// MQTT topic filters as SQL conditions on a `topic` column, so that offline fetch and
// retain lookup serve wildcard subscriptions straight from PostgreSQL.
//
// An exact filter (no wildcard) is `topic = $n`. A wildcard filter becomes
//   topic LIKE <prefix> ESCAPE '\' AND topic ~ <regex>
// where the prefix is the filter's literal levels before its first wildcard (LIKE's
// metacharacters %, _ and \ escaped), which lets PostgreSQL narrow the rows by index,
// and the anchored POSIX regular expression decides: '+' is one level ([^/]*), a final
// '#' is the parent level and anything below it, and a filter whose first level is a
// wildcard does not match topics starting with '$' [MQTT-4.7.2-1]. Every literal byte
// is escaped, so any topic text is matched literally.
#include <string>
#include <string_view>

namespace mqttd::persistence {

struct topic_condition {
    bool exact = true;
    std::string like;   // with wildcards: the LIKE pattern (prefix + '%')
    std::string regex;  // with wildcards: the anchored regular expression
};

// `filter` is an ordinary filter (not $share/...), already valid.
topic_condition filter_condition(std::string_view filter);

std::string like_escape(std::string_view literal);   // for LIKE ... ESCAPE '\'
std::string regex_escape(std::string_view literal);  // for PostgreSQL's ~ (ARE)

}  // namespace mqttd::persistence
