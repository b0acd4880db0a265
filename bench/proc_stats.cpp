#include "bench/proc_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace bench {

namespace {

std::uint64_t status_kib(const std::string& text, std::string_view key) {
    auto at = text.find(key);
    if (at == std::string::npos) return 0;
    return std::stoull(text.substr(at + key.size()));
}

double seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

}  // namespace

std::optional<process_sample> sample_process(int pid) {
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ifstream status_file(dir + "/status");
    std::ifstream stat_file(dir + "/stat");
    if (!status_file || !stat_file) return std::nullopt;
    std::stringstream status;
    status << status_file.rdbuf();
    std::string stat;
    std::getline(stat_file, stat);

    process_sample s;
    s.rss_kib = status_kib(status.str(), "VmRSS:");
    s.peak_kib = status_kib(status.str(), "VmHWM:");
    // The command name (field 2) is in parentheses and may itself hold spaces or ')':
    // the fields are counted from the last ')'. utime and stime are fields 14 and 15.
    auto close = stat.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(stat.substr(close + 2));
    std::string skip;
    for (int field = 3; field < 14; ++field) fields >> skip;
    std::uint64_t utime = 0, stime = 0;
    if (!(fields >> utime >> stime)) return std::nullopt;
    s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    return s;
}

double own_cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return seconds(u.ru_utime) + seconds(u.ru_stime);
}

std::optional<machine_cpu_sample> sample_machine_cpu() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    // cpu  user nice system idle iowait irq softirq steal ...
    std::uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
    if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || cpu != "cpu")
        return std::nullopt;
    machine_cpu_sample s;
    s.busy = user + nice + system + irq + softirq + steal;
    s.total = s.busy + idle + iowait;
    return s;
}

double busy_fraction(const machine_cpu_sample& from, const machine_cpu_sample& to) {
    auto total = to.total - from.total;
    return total ? static_cast<double>(to.busy - from.busy) / static_cast<double>(total) : 0.0;
}

}  // namespace bench
