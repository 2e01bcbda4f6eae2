#include "lander.h"

#include "wait.h"

namespace s3tc {
namespace {

bool has_landed_in(DownloadState &d, uint64_t start, uint64_t end) {
    Landing *landing = d.landing();
    return landing != nullptr && landing->has_landed(start, end);
}

}  // namespace

Lander::Lander(std::shared_ptr<Download> download, uint8_t *target, uint64_t size, std::shared_ptr<void> owner)
    : download_(std::move(download)), owner_(std::move(owner)) {
    {
        auto locked = download_->lock();
        Download::of(locked).attach(target, size);
    }
    thread_ = std::thread([download = download_] {
        auto locked = download->lock();
        DownloadState &d = Download::of(locked);
        for (;;) {
            locked.wait([&d] {
                Landing *landing = d.landing();
                return landing == nullptr || !landing->to_copy.empty() || d.finished;
            });
            if (d.landing() == nullptr) return;       // let go of
            if (!Download::copy_next_part(locked)) {  // finished, and every queued part is in
                Download::place_misplaced(locked);
                return;
            }
        }
    });
}

Lander::~Lander() {
    // In a forked child the thread is the parent's (fork.h, rule 1): its handle is let go of, as std::thread
    // would end the process.
    if (!made_in_.is_current()) {
        new std::thread(std::move(thread_));
        return;
    }
    std::shared_ptr<Slices> slices;
    {
        auto locked = download_->lock();
        slices = Download::of(locked).detach();
        locked.notify_all();
    }
    thread_.join();                                  // at most the copy of one part: the lander never waits for the GIL
    if (slices != nullptr) slices->wait_released();  // then the owner may let the destination go
}

void Lander::wait_landed(uint64_t start, uint64_t end) {
    WaitingOnS3 waiting(download_->context().operation);
    auto locked = download_->lock();
    DownloadState &d = Download::of(locked);
    wait_interruptibly(
        locked.unique_lock(), locked.changed(),
        [&d, start, end] { return has_landed_in(d, start, end) || d.landing_over(); }, [this] { download_->cancel(); });
    if (!has_landed_in(d, start, end)) d.throw_if_failed(download_->context());
}

bool Lander::has_landed(uint64_t start, uint64_t end) {
    auto locked = download_->lock();
    return has_landed_in(Download::of(locked), start, end);
}

}  // namespace s3tc
