// State shared between the CRT's threads and ours, reachable only under its lock.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

namespace s3tc {

// Holds a T with the mutex that guards it and a condition variable for changes to it. The only way to the T
// is lock(), whose Locked handle holds the mutex for as long as it lives: code that has a Locked may touch the
// state, code that has none cannot, and a function that needs the lock says so by taking a Locked&.
// T may be a base of the value actually held (a request's state, extended by the kind of request).
template <class T>
class Guarded {
public:
    explicit Guarded(std::unique_ptr<T> value) : value_(std::move(value)) {}

    class Locked {
    public:
        explicit Locked(Guarded &owner) : owner_(&owner), lock_(owner.mutex_) {}

        T &operator*() const { return *owner_->value_; }
        T *operator->() const { return owner_->value_.get(); }

        // Waits on the state's condition variable until ready() holds (the lock is let go meanwhile).
        void wait(const std::function<bool()> &ready) { owner_->changed_.wait(lock_, ready); }
        // Lets waiters look again; call after changing the state.
        void notify_all() const { owner_->changed_.notify_all(); }
        // For waits that must let go of the lock in their own way (wait_interruptibly) or for a while (a copy).
        std::unique_lock<std::mutex> &unique_lock() { return lock_; }
        std::condition_variable &changed() const { return owner_->changed_; }

    private:
        Guarded *owner_;
        std::unique_lock<std::mutex> lock_;
    };

    Locked lock() { return Locked(*this); }

private:
    std::unique_ptr<T> value_;
    std::mutex mutex_;
    std::condition_variable changed_;
};

}  // namespace s3tc
