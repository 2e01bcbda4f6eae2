#include "put.h"

#include "guarded.h"
#include "runtime.h"
#include "wait.h"

#include <aws/io/future.h>

#include <stdexcept>

namespace s3tc {
namespace {

// Completion of one aws_s3_meta_request_write(): whether it is done, under its lock.
using WriteCompletion = Guarded<bool>;

void on_write_done(void *user_data) {
    auto *holder = static_cast<std::shared_ptr<WriteCompletion> *>(user_data);
    {
        auto done = (*holder)->lock();
        *done = true;
        done.notify_all();
    }
    delete holder;
}

}  // namespace

PutStream::PutStream(std::shared_ptr<Client> client, std::string bucket, std::string key, std::string storage_class)
    : client_(std::move(client)),
      bucket_(std::move(bucket)),
      key_(std::move(key)),
      storage_class_(std::move(storage_class)) {}

PutStream::~PutStream() {
    // Dropped without close(): the upload must not complete. (Unless it is the parent's: fork.h, rule 1.)
    if (upload_ && !ended_ && made_in_.is_current()) upload_->cancel();
}

void PutStream::start_multipart() {
    auto target = client_->target("PUT", bucket_, key_);
    if (!storage_class_.empty()) {
        aws_http_headers_set(aws_http_message_get_headers(target->message()),
                             aws_byte_cursor_from_c_str("x-amz-storage-class"),
                             aws_byte_cursor_from_array(storage_class_.data(), storage_class_.size()));
    }
    upload_ = std::make_shared<MetaRequest>(client_->context("PutObject", bucket_, key_));
    aws_s3_meta_request_options options = {};
    options.type = AWS_S3_META_REQUEST_TYPE_PUT_OBJECT;
    options.send_using_async_writes = true;
    aws_s3_checksum_config checksums;
    client_->apply_checksums(options, checksums, true);
    target->apply(options);
    upload_->start(*client_, options);
}

void PutStream::send(const uint8_t *data, size_t size, bool eof) {
    // Held until the write completed: the CRT's write job keeps no reference of its own.
    HeldMetaRequest handle = upload_->running_handle();
    if (handle == nullptr) {  // the upload already ended, e.g. CreateMultipartUpload failed
        upload_->wait_finished();
        upload_->throw_if_failed();
        throw std::logic_error("the upload ended before all data was written");
    }
    aws_future_void *future = aws_s3_meta_request_write(handle.get(), aws_byte_cursor_from_array(data, size), eof);
    auto completion = std::make_shared<WriteCompletion>(std::make_unique<bool>(false));
    aws_future_void_register_callback(future, on_write_done, new std::shared_ptr<WriteCompletion>(completion));
    {
        WaitingOnS3 waiting(upload_->context().operation);
        auto done = completion->lock();
        wait_interruptibly(
            done.unique_lock(), done.changed(), [&done] { return *done; },
            [&] {
                upload_->cancel();
                // The CRT may still read `data` until the write completes; the caller's buffer must outlive that.
                auto relocked = completion->lock();
                relocked.wait([&relocked] { return *relocked; });
                ended_ = true;
            });
    }
    const int error = aws_future_void_get_error(future);
    aws_future_void_release(future);
    if (error != 0) {
        // A failed write means the meta request is finishing; its outcome says why.
        upload_->wait_finished();
        ended_ = true;
        upload_->throw_if_failed();
        Outcome outcome;
        outcome.error_code = error;
        throw S3Error(upload_->context(), outcome);
    }
}

void PutStream::write(const uint8_t *data, size_t size) {
    if (ended_) throw std::logic_error("write to an upload that was closed or aborted");
    bytes_written_ += size;
    if (!upload_) {
        if (pending_.size() + size <= client_->upload_part_size()) {
            pending_.insert(pending_.end(), data, data + size);
            return;
        }
        start_multipart();
        if (!pending_.empty()) send(pending_.data(), pending_.size(), false);
        std::vector<uint8_t>().swap(pending_);
    }
    if (size > 0) send(data, size, false);
}

void PutStream::close() {
    if (ended_) return;
    ended_ = true;
    if (!upload_) {
        client_->put_small_object(bucket_, key_, std::move(pending_), storage_class_);
        return;
    }
    send(nullptr, 0, true);
    upload_->wait_finished();
    upload_->throw_if_failed();
    client_->metrics()->add_bytes(upload_->context().operation, bytes_written_);
}

void PutStream::abort() {
    ended_ = true;
    std::vector<uint8_t>().swap(pending_);
    if (upload_) {
        upload_->cancel();
        upload_->wait_finished();  // the CRT aborts the multipart upload before it finishes
    }
}

}  // namespace s3tc
