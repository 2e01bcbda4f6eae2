// A dataset's objects (bucket, key, size, ETag) in one compact, immutable file that every process on a node
// maps, instead of a Python object per object in each process: about 30 bytes an object, shared.
//
// The file (host byte order; it never leaves the node that wrote it):
//   Header                  magic, byte order, version, counts, section offsets, SHA-256 of the keys
//   blocks                  BLOCK_ENTRIES entries each, one after another; an entry is
//                             varint  bytes shared with the previous key of its block (0 for a block's first)
//                             varint  length of the rest of the key, then those bytes
//                             varint  bucket number (into the bucket table)
//                             varint  size + 1 (0: size unknown, and then no ETag either)
//                             byte    ETag form: 0 none, 1 "<32 lowercase hex>" as 16 bytes, 2 as written
//                                     (then varint length and the bytes)
//                           and in an index of a listing (the header's `listing` flag), then
//                             varint  storage class number (into the storage class table; 0: none given)
//                             varint  bytes of LastModified shared with the previous entry's of its block,
//                                     varint length of the rest, then those bytes
//   block offsets           uint64 per block, from the file's start (8-aligned)
//   bucket table            per bucket: uint32 length, then its name
//   storage class table     the same, for storage classes (a listing's index only)
// An entry is found by its block's offset and at most BLOCK_ENTRIES - 1 entries decoded before it. A file
// that does not hold together (truncated, overwritten) is refused when opened or read, never read past.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

struct aws_hash;

namespace s3tc {

inline constexpr uint32_t OBJECT_INDEX_VERSION = 1;
inline constexpr uint32_t BLOCK_ENTRIES = 16;

// A file that cannot be opened, mapped or written: its errno and its path (Python's OSError).
class IndexFileError : public std::system_error {
public:
    IndexFileError(int code, std::string path)
        : std::system_error(code, std::generic_category(), path), path_(std::move(path)) {}
    const std::string &path() const { return path_; }

private:
    std::string path_;
};

struct IndexEntry {
    std::string bucket;
    std::string key;
    int64_t size;  // -1: unknown
    std::string etag;
    std::string storage_class;  // a listing's: "" when S3 named none, and always in a manifest's index
    std::string last_modified;
};

// One index file, mapped read-only. Safe to read from many threads: nothing changes after open.
class ObjectIndex {
public:
    // Throws IndexFileError when the file cannot be opened or mapped, std::invalid_argument when it is not
    // a whole index of this version.
    explicit ObjectIndex(const std::string &path);
    ~ObjectIndex();
    ObjectIndex(const ObjectIndex &) = delete;
    ObjectIndex &operator=(const ObjectIndex &) = delete;

    uint64_t size() const { return count_; }
    // Throws std::out_of_range past the end, std::invalid_argument when the entry's bytes do not hold together.
    IndexEntry entry(uint64_t position) const;
    // SHA-256 (hex) of every key in order, each followed by a NUL: a listing's fingerprint.
    const std::string &keys_digest() const { return digest_; }
    const std::string &path() const { return path_; }
    uint64_t file_size() const { return length_; }

private:
    [[noreturn]] void damaged(const char *what) const;

    std::string path_;
    const uint8_t *data_ = nullptr;
    uint64_t length_ = 0;
    uint64_t count_ = 0;
    uint64_t blocks_start_ = 0;
    uint64_t blocks_end_ = 0;
    bool listing_ = false;
    std::vector<std::string> buckets_;
    std::vector<std::string> storage_classes_;
    std::string digest_;
};

// Writes an index file entry by entry, in the dataset's order; memory stays one block and the block offsets.
class ObjectIndexWriter {
public:
    // Creates `path`, which must not exist (IndexFileError otherwise, or when it cannot be written). `listing`:
    // each entry keeps its storage class and LastModified too.
    ObjectIndexWriter(const std::string &path, bool listing);
    ~ObjectIndexWriter();  // an unfinished file is removed
    ObjectIndexWriter(const ObjectIndexWriter &) = delete;
    ObjectIndexWriter &operator=(const ObjectIndexWriter &) = delete;

    // size -1: unknown (the ETag is then not kept). storage_class and last_modified: kept in a listing's index.
    void add(std::string_view bucket, std::string_view key, int64_t size, std::string_view etag,
             std::string_view storage_class = {}, std::string_view last_modified = {});
    uint64_t count() const { return count_; }
    // Writes the block offsets, buckets and header and closes the file: complete from here on.
    void finish();
    // Closes and removes the file.
    void abandon();

private:
    void flush_block();
    void write(const void *bytes, size_t length);
    void hash_key(std::string_view key);

    std::string path_;
    std::FILE *file_ = nullptr;
    uint64_t offset_ = 0;  // bytes written so far
    uint64_t count_ = 0;
    std::string block_;
    std::string previous_key_;
    uint32_t in_block_ = 0;
    std::vector<uint64_t> block_offsets_;
    bool listing_;
    std::string previous_last_modified_;
    std::map<std::string, uint32_t, std::less<>> bucket_numbers_;
    std::vector<std::string> buckets_;
    std::map<std::string, uint32_t, std::less<>> storage_class_numbers_;  // from 1; 0 is none
    std::vector<std::string> storage_classes_;
    aws_hash *sha256_ = nullptr;
    std::string hash_buffer_;  // keys waiting to be hashed: one update per 64 KiB, not per key
};

}  // namespace s3tc
