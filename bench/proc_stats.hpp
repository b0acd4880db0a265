#pragma once
// What the kernel tells about a process and the machine: resident memory and CPU time
// of the broker under test (from /proc/PID/status and /proc/PID/stat), CPU time of the
// generator itself, and how busy all cores were (from /proc/stat), so a result says
// whether the machine, not the broker, was the limit.
#include <cstdint>
#include <optional>

namespace bench {

struct process_sample {
    std::uint64_t rss_kib = 0;   // VmRSS
    std::uint64_t peak_kib = 0;  // VmHWM: the largest RSS of the process's life
    double cpu_seconds = 0;      // user + system
};

// nullopt when the process is gone or unreadable.
std::optional<process_sample> sample_process(int pid);

// This process's user + system CPU time.
double own_cpu_seconds();

struct machine_cpu_sample {
    std::uint64_t busy = 0;   // clock ticks not idle nor waiting for I/O, all cores
    std::uint64_t total = 0;  // all clock ticks, all cores
};
std::optional<machine_cpu_sample> sample_machine_cpu();

// Busy share of all cores between two samples, 0..1.
double busy_fraction(const machine_cpu_sample& from, const machine_cpu_sample& to);

}  // namespace bench
