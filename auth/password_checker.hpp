#pragma once
// Checks passwords on a thread of its own: bcrypt and PBKDF2 cost milliseconds, which an
// I/O thread must not spend while its other connections wait. The queue is bounded: when
// it is full, a check is answered "busy" at once.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "auth/password_hash.hpp"

namespace auth {

class password_checker {
public:
    enum class verdict { pending, accepted, refused, busy };

    // What a check comes to; read it after `done` ran (or poll it).
    struct result {
        std::atomic<verdict> value{verdict::pending};
    };

    explicit password_checker(std::size_t max_waiting = 1024) : max_waiting_(max_waiting) {}
    ~password_checker();
    password_checker(const password_checker&) = delete;
    password_checker& operator=(const password_checker&) = delete;

    // Checks `password` against `hash` on the checker's thread, then calls `done` there.
    // When the queue is full the result is `busy` at once and `done` is not called.
    std::shared_ptr<const result> check(std::shared_ptr<const password_hash> hash, std::string password,
                                        std::function<void()> done);

private:
    struct job {
        std::shared_ptr<const password_hash> hash;
        std::string password;
        std::function<void()> done;
        std::shared_ptr<result> out;
    };
    void run();

    const std::size_t max_waiting_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<job> jobs_;
    bool stopping_ = false;
    std::thread thread_;  // started by the first check
};

}  // namespace auth
