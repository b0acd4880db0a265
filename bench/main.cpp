// mqtt_load: drives MQTT clients against one broker in one of the scenarios of
// options.hpp and prints the result as one JSON line on stdout, for bench/run.sh.
#include <sys/resource.h>

#include <boost/json/serialize.hpp>
#include <cstdio>
#include <exception>
#include <iostream>

#include "bench/options.hpp"
#include "bench/scenario.hpp"

namespace {

// Every client is a descriptor: thousands of them need more than the usual soft limit.
void raise_descriptor_limit() {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return;
    r.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &r) != 0) std::perror("mqtt_load: cannot raise the open file limit");
}

}  // namespace

int main(int argc, char** argv) {
    bench::options o;
    try {
        o = bench::parse_options(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mqtt_load: %s\n", e.what());
        return 2;
    }
    raise_descriptor_limit();
    try {
        auto result = bench::run_scenario(o);
        std::cout << boost::json::serialize(result) << std::endl;
        return result["complete"].as_bool() ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mqtt_load: %s\n", e.what());
        return 1;
    }
}
