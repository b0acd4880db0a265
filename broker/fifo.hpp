#pragma once
// A first-in first-out queue on a vector: unlike std::deque (which allocates its map
// and a first block as soon as it is constructed), an empty fifo owns no memory, which
// matters for thousands of idle connections and sessions. Popped slots are reclaimed
// when the queue empties or when they outnumber the live ones.
#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace mqttd {

template <class T>
class fifo {
public:
    using iterator = typename std::vector<T>::iterator;
    using const_iterator = typename std::vector<T>::const_iterator;

    bool empty() const noexcept { return head_ == items_.size(); }
    std::size_t size() const noexcept { return items_.size() - head_; }

    T& front() noexcept { return items_[head_]; }
    const T& front() const noexcept { return items_[head_]; }

    void push_back(T v) { items_.push_back(std::move(v)); }

    void pop_front() {
        items_[head_] = T();  // release what the item holds now, not at compaction
        ++head_;
        if (head_ == items_.size()) {
            clear();
        } else if (head_ >= 32 && head_ * 2 >= items_.size()) {
            items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }

    // Inserts before `pos`; erases at `pos` (popping the front when it is the front).
    // Linear in what follows `pos`: for bounded queues.
    void insert(iterator pos, T v) { items_.insert(pos, std::move(v)); }
    void erase(iterator pos) {
        if (pos == begin()) {
            pop_front();
            return;
        }
        items_.erase(pos);
    }

    // Removes the items for which pred(item) is true, keeping the order of the rest, and
    // hands each removed item to take() (moved from), in order. pred only looks.
    template <class Pred, class Take>
    void extract_if(Pred pred, Take take) {
        auto kept = begin();
        for (auto it = begin(); it != end(); ++it) {
            if (pred(std::as_const(*it))) {
                take(std::move(*it));
            } else {
                if (kept != it) *kept = std::move(*it);
                ++kept;
            }
        }
        items_.erase(kept, items_.end());
        if (empty()) clear();
    }

    // Empties the queue; its memory is released once it held many items.
    void clear() noexcept {
        items_.clear();
        head_ = 0;
        if (items_.capacity() > 64) std::vector<T>().swap(items_);
    }

    iterator begin() noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    iterator end() noexcept { return items_.end(); }
    const_iterator begin() const noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    const_iterator end() const noexcept { return items_.end(); }

private:
    std::vector<T> items_;
    std::size_t head_ = 0;
};

}  // namespace mqttd
