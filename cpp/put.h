// PutObject: an upload that Python feeds with write() calls and finishes with close().
#pragma once

#include "client.h"
#include "fork.h"
#include "request.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace s3tc {

class PutStream {
public:
    PutStream(std::shared_ptr<Client> client, std::string bucket, std::string key, std::string storage_class);
    ~PutStream();
    PutStream(const PutStream &) = delete;
    PutStream &operator=(const PutStream &) = delete;

    // Takes the bytes (copied before it returns, so the caller may reuse its buffer).
    void write(const uint8_t *data, size_t size);
    // Completes the upload: the object exists once this returns. Raises S3Error on failure.
    void close();
    // Cancels the upload; no object is created and no multipart upload is left behind.
    void abort();

    uint64_t bytes_written() const { return bytes_written_; }
    const std::string &bucket() const { return bucket_; }
    const std::string &key() const { return key_; }

private:
    void start_multipart();
    void send(const uint8_t *data, size_t size, bool eof);

    std::shared_ptr<Client> client_;
    std::string bucket_;
    std::string key_;
    std::string storage_class_;
    // Objects that fit in one part go up in a single PutObject; bytes wait here until we know.
    std::vector<uint8_t> pending_;
    std::shared_ptr<MetaRequest> upload_;
    uint64_t bytes_written_ = 0;
    bool ended_ = false;
    MadeInProcess made_in_;
};

}  // namespace s3tc
