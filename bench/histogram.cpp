#include "bench/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace bench {

namespace {

constexpr unsigned sub_bits = 6;                     // 64 buckets per power of two
constexpr std::uint64_t exact_below = 2u << sub_bits;  // 128: one bucket per value
constexpr unsigned max_exponent = 47;                // 2^48 ns is over three days
constexpr std::size_t bucket_count = exact_below + (max_exponent - sub_bits) * (1u << sub_bits);

}  // namespace

histogram::histogram() : buckets_(bucket_count, 0) {}

std::size_t histogram::bucket_of(std::uint64_t ns) noexcept {
    if (ns < exact_below) return static_cast<std::size_t>(ns);
    unsigned exponent = std::min<unsigned>(std::bit_width(ns) - 1, max_exponent);
    std::uint64_t sub = (ns >> (exponent - sub_bits)) & ((1u << sub_bits) - 1);
    if (exponent == max_exponent && (ns >> max_exponent) > 1) sub = (1u << sub_bits) - 1;  // clamp the absurd
    return exact_below + (exponent - sub_bits - 1) * (1u << sub_bits) + sub;
}

std::uint64_t histogram::middle_of(std::size_t bucket) noexcept {
    if (bucket < exact_below) return bucket;
    std::size_t i = bucket - exact_below;
    unsigned exponent = static_cast<unsigned>(i >> sub_bits) + sub_bits + 1;
    std::uint64_t sub = i & ((1u << sub_bits) - 1);
    unsigned shift = exponent - sub_bits;
    std::uint64_t low = ((std::uint64_t{1} << sub_bits) | sub) << shift;
    return low + (std::uint64_t{1} << shift) / 2;
}

void histogram::record(std::uint64_t ns) noexcept {
    ++buckets_[bucket_of(ns)];
    ++count_;
    sum_ += ns;
    max_ = std::max(max_, ns);
}

void histogram::merge(const histogram& other) noexcept {
    for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
}

std::uint64_t histogram::quantile(double q) const noexcept {
    if (count_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_)));
    rank = std::max<std::uint64_t>(rank, 1);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        seen += buckets_[i];
        if (seen >= rank) return std::min(middle_of(i), max_);
    }
    return max_;
}

}  // namespace bench
