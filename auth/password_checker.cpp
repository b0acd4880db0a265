#include "auth/password_checker.hpp"

#include <openssl/crypto.h>

namespace auth {

password_checker::~password_checker() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const password_checker::result> password_checker::check(std::shared_ptr<const password_hash> hash,
                                                                        std::string password,
                                                                        std::function<void()> done) {
    auto out = std::make_shared<result>();
    {
        std::lock_guard lock(mutex_);
        if (jobs_.size() >= max_waiting_ || stopping_) {
            out->value = verdict::busy;
            OPENSSL_cleanse(password.data(), password.size());
            return out;
        }
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
        jobs_.push_back({std::move(hash), std::move(password), std::move(done), out});
    }
    wake_.notify_one();
    return out;
}

void password_checker::run() {
    for (;;) {
        job j;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (stopping_) return;
            j = std::move(jobs_.front());
            jobs_.pop_front();
        }
        const bool ok = verify_password(*j.hash, j.password);
        OPENSSL_cleanse(j.password.data(), j.password.size());
        j.out->value = ok ? verdict::accepted : verdict::refused;
        if (j.done) j.done();
    }
}

}  // namespace auth
