// The checker's thread and its bounded queue.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "auth/password_checker.hpp"

using verdict = auth::password_checker::verdict;

namespace {

std::shared_ptr<const auth::password_hash> plain(const std::string& pw) {
    std::string why;
    return std::make_shared<const auth::password_hash>(*auth::parse_password_hash("$plain$" + pw, why));
}

struct done_counter {
    std::mutex m;
    std::condition_variable cv;
    int n = 0;
    std::thread::id on;
    std::function<void()> callback() {
        return [this] {
            std::lock_guard lock(m);
            ++n;
            on = std::this_thread::get_id();
            cv.notify_all();
        };
    }
    bool wait_for(int count) {
        std::unique_lock lock(m);
        return cv.wait_for(lock, std::chrono::seconds(10), [&] { return n >= count; });
    }
};

}  // namespace

TEST_CASE("password checker: verdicts come on its own thread, then `done`") {
    auth::password_checker checker;
    done_counter done;
    auto good = checker.check(plain("s3cret"), "s3cret", done.callback());
    auto bad = checker.check(plain("s3cret"), "guess", done.callback());
    REQUIRE(done.wait_for(2));
    CHECK(good->value == verdict::accepted);
    CHECK(bad->value == verdict::refused);
    CHECK(done.on != std::this_thread::get_id());
}

TEST_CASE("password checker: a full queue answers busy at once") {
    auth::password_checker checker(2);
    // A bcrypt hash of cost 12 keeps the thread busy long enough to fill the queue.
    std::string why;
    auto slow = std::make_shared<const auth::password_hash>(
        *auth::parse_password_hash("$2b$12$abcdefghijklmnopqrstuuQKqSsdYvK1Zt7kHb5Euj4kKkyZ0Gg2q", why));
    done_counter done;
    std::vector<std::shared_ptr<const auth::password_checker::result>> results;
    for (int i = 0; i < 8; ++i) results.push_back(checker.check(slow, "x", done.callback()));
    int busy = 0;
    for (const auto& r : results) busy += r->value == verdict::busy;
    // At most one being checked and two waiting; the rest were refused at once.
    CHECK(busy >= 5);
    REQUIRE(done.wait_for(8 - busy));
    for (const auto& r : results) CHECK(r->value != verdict::pending);
}
