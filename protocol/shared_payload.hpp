#pragma once
// An immutable byte string shared by every receiver of one message: the payload is
// stored once however many sessions it is delivered to.
#include <cstring>
#include <memory>
#include <string_view>

namespace mqtt {

class shared_payload {
public:
    shared_payload() = default;
    // Copies the bytes once, into a single allocation that holds them and the count.
    explicit shared_payload(std::string_view bytes) : size_(bytes.size()) {
        if (bytes.empty()) return;
        auto block = std::make_shared_for_overwrite<char[]>(bytes.size());
        std::memcpy(block.get(), bytes.data(), bytes.size());
        data_ = std::move(block);
    }

    std::string_view view() const noexcept { return {data_.get(), size_}; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    // How many holders share these bytes (0 for an empty payload).
    long use_count() const noexcept { return data_.use_count(); }

    friend bool operator==(const shared_payload& a, const shared_payload& b) noexcept {
        return a.view() == b.view();
    }

private:
    std::shared_ptr<const char[]> data_;
    std::size_t size_ = 0;
};

}  // namespace mqtt
