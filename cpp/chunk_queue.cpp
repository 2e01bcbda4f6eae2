#include "chunk_queue.h"

#include "fork.h"
#include "part_buffer.h"

#include <aws/common/error.h>

#include <cstring>
#include <new>

namespace s3tc {
namespace {

// A received part the reader copies out of the CRT's buffer itself, counted against the lending budget.
class LentPart {
public:
    LentPart(uint64_t offset, aws_byte_cursor data, aws_s3_buffer_ticket *ticket, LendingBudget &lending)
        : part_(offset, data, ticket), lending_(lending) {}
    ~LentPart() {
        // In a forked child the budget belongs to the parent's client (fork.h, rule 1).
        if (!made_in_.is_current()) return;
        part_.reset();
        lending_.give_back(part_.bytes().len);
    }
    LentPart(const LentPart &) = delete;
    LentPart &operator=(const LentPart &) = delete;

private:
    PartBuffer part_;
    LendingBudget &lending_;
    MadeInProcess made_in_;
};

// Appends the part `data` (object offset `offset`) in the CRT's buffer that `ticket` holds, already counted
// against `lending`; an AWS error code if memory ran out, else 0.
int append_lent(std::deque<Chunk> &chunks, uint64_t offset, aws_byte_cursor data, aws_s3_buffer_ticket *ticket,
                LendingBudget &lending) {
    std::shared_ptr<LentPart> part;
    try {
        part = std::make_shared<LentPart>(offset, data, ticket, lending);
    } catch (const std::bad_alloc &) {
        lending.give_back(data.len);
        return AWS_ERROR_OOM;
    }
    try {
        chunks.push_back(Chunk{offset, std::make_shared<Buffer>(data.ptr, data.len, std::move(part))});
    } catch (const std::bad_alloc &) {
        return AWS_ERROR_OOM;  // the part, let go, went back to the budget
    }
    return 0;
}

}  // namespace

int append_copy(std::deque<Chunk> &chunks, uint64_t offset, aws_byte_cursor data, BufferRecycler *recycler) {
    try {
        auto copy = recycler != nullptr ? recycler->take(data.len) : std::make_shared<Buffer>(data.len);
        std::memcpy(copy->data(), data.ptr, data.len);
        chunks.push_back(Chunk{offset, std::move(copy)});
    } catch (const std::bad_alloc &) {
        return AWS_ERROR_OOM;
    }
    return 0;
}

int ChunkQueue::append(uint64_t offset, aws_byte_cursor data, aws_s3_buffer_ticket *ticket, LendingBudget *lending) {
    if (ticket != nullptr && lending != nullptr && lending->lend(data.len)) {
        return append_lent(chunks, offset, data, ticket, *lending);
    }
    return append_copy(chunks, offset, data, recycler.get());
}

}  // namespace s3tc
