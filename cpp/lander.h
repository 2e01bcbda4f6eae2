// A stream's thread that copies the rest of a body into the caller's memory while the caller reads what landed.
#pragma once

#include "download.h"
#include "fork.h"

#include <cstdint>
#include <memory>
#include <thread>

namespace s3tc {

// Landing mode with overlap: each part of the rest of the body is copied to its offset in the caller's memory as it
// arrives, by a thread of the stream, while the caller reads what has landed.
class Lander {
public:
    // Starts copying the rest of `download`'s body into `target` (`size` bytes); `owner` keeps `target` alive
    // until the thread ended.
    Lander(std::shared_ptr<Download> download, uint8_t *target, uint64_t size, std::shared_ptr<void> owner);
    // Ends the thread (after the part it is copying), then lets go of the destination.
    ~Lander();
    Lander(const Lander &) = delete;
    Lander &operator=(const Lander &) = delete;

    // Waits until the object's bytes [start, end) have landed, or no more will (a range past the end); throws
    // the download's failure if it failed first.
    void wait_landed(uint64_t start, uint64_t end);
    // Whether the object's bytes [start, end) have landed, without waiting.
    bool has_landed(uint64_t start, uint64_t end);

private:
    std::shared_ptr<Download> download_;
    std::thread thread_;
    std::shared_ptr<void> owner_;
    MadeInProcess made_in_;
};

}  // namespace s3tc
