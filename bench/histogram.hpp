#pragma once
// A latency histogram with log-linear buckets: values below 128 ns are kept exactly,
// larger ones in 64 buckets per power of two, so a percentile is off by less than 1.6 %
// whatever its magnitude, in a fixed 22 KB. Recording is one increment, cheap enough for
// every received message; each generator thread keeps its own and they are merged at
// the end.
#include <cstdint>
#include <vector>

namespace bench {

class histogram {
public:
    histogram();

    void record(std::uint64_t ns) noexcept;
    void merge(const histogram& other) noexcept;

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t max() const noexcept { return max_; }
    double mean() const noexcept { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }
    // The value at or below which the fraction q (0..1) of the samples lie, in ns; the
    // middle of its bucket, never above the largest sample seen.
    std::uint64_t quantile(double q) const noexcept;

private:
    static std::size_t bucket_of(std::uint64_t ns) noexcept;
    static std::uint64_t middle_of(std::size_t bucket) noexcept;

    std::vector<std::uint64_t> buckets_;
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace bench
