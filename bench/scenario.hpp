#pragma once
// A run of the generator: the clients of one pattern (see options.hpp), taken through
// their phases (connect and subscribe, warm-up, measurement, drain, disconnect), and the
// result as one JSON object.
#include <boost/json/object.hpp>

#include "bench/options.hpp"

namespace bench {

// Blocks until the scenario is done or options.timeout has passed (the result then says
// "complete": false). Progress goes to stderr once a second.
boost::json::object run_scenario(const options& o);

}  // namespace bench
