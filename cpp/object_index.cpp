#include "object_index.h"

#include "runtime.h"

#include <aws/cal/hash.h>
#include <aws/common/byte_buf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace s3tc {

namespace {

constexpr char MAGIC[8] = {'s', '3', 't', 'c', 'i', 'd', 'x', '\0'};
constexpr uint32_t BYTE_ORDER_MARK = 0x01020304;

struct Header {
    char magic[8];
    uint32_t byte_order;
    uint32_t version;
    uint32_t block_entries;
    uint32_t bucket_count;
    uint32_t listing;  // 1: entries keep their storage class and LastModified
    uint32_t storage_class_count;
    uint64_t count;
    uint64_t blocks_end;  // where the block offsets start
    uint64_t buckets_start;
    uint64_t file_size;
    char keys_digest[64];
};
constexpr uint64_t BLOCKS_START = 128;
static_assert(sizeof(Header) <= BLOCKS_START);

enum EtagForm : uint8_t { NO_ETAG = 0, MD5_ETAG = 1, WRITTEN_ETAG = 2 };

void put_varint(std::string &out, uint64_t value) {
    while (value >= 0x80) {
        out.push_back(static_cast<char>((value & 0x7f) | 0x80));
        value >>= 7;
    }
    out.push_back(static_cast<char>(value));
}

// The value of each lowercase hex digit, -1 for any other byte (upper case is kept as written: the ETag read
// back must be the one given). A table: this runs for every object of a 10-million-object manifest.
struct HexDigits {
    int8_t value[256];
    constexpr HexDigits() : value() {
        for (int c = 0; c < 256; ++c) value[c] = -1;
        for (int c = '0'; c <= '9'; ++c) value[c] = static_cast<int8_t>(c - '0');
        for (int c = 'a'; c <= 'f'; ++c) value[c] = static_cast<int8_t>(c - 'a' + 10);
    }
};
constexpr HexDigits HEX;

int hex_value(char c) { return HEX.value[static_cast<unsigned char>(c)]; }

// `length` bytes as 2 * `length` lowercase hex digits at `out` (no terminating NUL).
void write_hex(const uint8_t *bytes, size_t length, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < length; ++i) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
}

// `"` + 32 lowercase hex digits + `"`, S3's ETag of an object uploaded in one part.
bool is_md5_etag(std::string_view etag) {
    if (etag.size() != 34 || etag.front() != '"' || etag.back() != '"') return false;
    int all = 0;
    for (size_t i = 1; i < 33; ++i) all |= hex_value(etag[i]);  // any -1 sets the sign bit
    return all >= 0;
}

// Reads an entry's fields within [at, end), refusing to step past end.
class Cursor {
public:
    Cursor(const uint8_t *at, const uint8_t *end) : at_(at), end_(end) {}

    bool varint(uint64_t &value) {
        value = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
            if (at_ == end_) return false;
            const uint8_t byte = *at_++;
            value |= static_cast<uint64_t>(byte & 0x7f) << shift;
            if ((byte & 0x80) == 0) return true;
        }
        return false;
    }
    bool bytes(uint64_t length, const uint8_t *&start) {
        if (length > static_cast<uint64_t>(end_ - at_)) return false;
        start = at_;
        at_ += length;
        return true;
    }

private:
    const uint8_t *at_;
    const uint8_t *end_;
};

[[noreturn]] void throw_errno(const std::string &path) { throw IndexFileError(errno, path); }

// A table of names (buckets, storage classes): per name a uint32 length, then its bytes.
bool read_names(Cursor &in, uint32_t count, std::vector<std::string> &names) {
    for (uint32_t i = 0; i < count; ++i) {
        const uint8_t *length_bytes = nullptr;
        const uint8_t *name = nullptr;
        uint32_t length = 0;
        if (!in.bytes(sizeof length, length_bytes)) return false;
        std::memcpy(&length, length_bytes, sizeof length);
        if (!in.bytes(length, name)) return false;
        names.emplace_back(reinterpret_cast<const char *>(name), length);
    }
    return true;
}

// Appends `text` to a key or LastModified being decoded: `shared` bytes of the one before, then the rest.
bool read_shared(Cursor &in, std::string &text) {
    uint64_t shared = 0, rest = 0;
    const uint8_t *bytes = nullptr;
    if (!in.varint(shared) || !in.varint(rest) || shared > text.size() || !in.bytes(rest, bytes)) return false;
    text.resize(shared);
    text.append(reinterpret_cast<const char *>(bytes), rest);
    return true;
}

// The other half of read_shared: what `text` shares with `previous`, then the rest.
void put_shared(std::string &out, const std::string &previous, std::string_view text) {
    size_t shared = 0;
    const size_t limit = std::min(previous.size(), text.size());
    while (shared < limit && previous[shared] == text[shared]) ++shared;
    put_varint(out, shared);
    put_varint(out, text.size() - shared);
    out.append(text.substr(shared));
}

}  // namespace

ObjectIndex::ObjectIndex(const std::string &path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno(path);
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
        const int error = errno;
        ::close(fd);
        throw IndexFileError(error, path);
    }
    length_ = static_cast<uint64_t>(st.st_size);
    if (length_ < BLOCKS_START) {
        ::close(fd);
        damaged("shorter than its header");
    }
    void *mapped = ::mmap(nullptr, length_, PROT_READ, MAP_SHARED, fd, 0);
    const int error = errno;
    ::close(fd);  // the mapping keeps the file
    if (mapped == MAP_FAILED) throw IndexFileError(error, path);
    data_ = static_cast<const uint8_t *>(mapped);
    try {
        Header header;
        std::memcpy(&header, data_, sizeof header);
        if (std::memcmp(header.magic, MAGIC, sizeof MAGIC) != 0) damaged("not an object index");
        if (header.byte_order != BYTE_ORDER_MARK || header.version != OBJECT_INDEX_VERSION ||
            header.block_entries != BLOCK_ENTRIES)
            damaged("of another version");
        if (header.file_size != length_) damaged("not of the length it was written with");
        count_ = header.count;
        const uint64_t blocks = count_ / BLOCK_ENTRIES + (count_ % BLOCK_ENTRIES != 0);
        if (header.blocks_end < BLOCKS_START || header.blocks_end % 8 != 0 || header.blocks_end > length_ ||
            blocks > (length_ - header.blocks_end) / 8 || header.buckets_start != header.blocks_end + blocks * 8)
            damaged("its sections do not fit");
        blocks_start_ = BLOCKS_START;
        blocks_end_ = header.blocks_end;
        Cursor tables(data_ + header.buckets_start, data_ + length_);
        if (header.listing > 1 || (header.listing == 0 && header.storage_class_count != 0))
            damaged("of another version");
        listing_ = header.listing == 1;
        storage_classes_.emplace_back();  // 0: none given
        if (!read_names(tables, header.bucket_count, buckets_) ||
            !read_names(tables, header.storage_class_count, storage_classes_))
            damaged("its tables are cut short");
        digest_.assign(header.keys_digest, sizeof header.keys_digest);
    } catch (...) {
        ::munmap(const_cast<uint8_t *>(data_), length_);
        throw;
    }
}

ObjectIndex::~ObjectIndex() { ::munmap(const_cast<uint8_t *>(data_), length_); }

void ObjectIndex::damaged(const char *what) const {
    // invalid_argument: Python's ValueError
    throw std::invalid_argument("the object index " + path_ + " is damaged (" + what +
                                "): remove it to build it again");
}

IndexEntry ObjectIndex::entry(uint64_t position) const {
    if (position >= count_) throw std::out_of_range("index out of range");
    const uint64_t block = position / BLOCK_ENTRIES;
    uint64_t start = 0;
    uint64_t end = 0;
    std::memcpy(&start, data_ + blocks_end_ + block * 8, 8);
    if (block + 1 < (count_ + BLOCK_ENTRIES - 1) / BLOCK_ENTRIES) {
        std::memcpy(&end, data_ + blocks_end_ + (block + 1) * 8, 8);
    } else {
        end = blocks_end_;
    }
    if (start < blocks_start_ || start > end || end > blocks_end_) damaged("a block offset is out of place");
    Cursor in(data_ + start, data_ + end);
    IndexEntry entry;
    for (uint64_t i = block * BLOCK_ENTRIES; i <= position; ++i) {
        uint64_t bucket = 0, size = 0, storage_class = 0;
        const uint8_t *bytes = nullptr;
        if (!read_shared(in, entry.key)) damaged("a key does not fit its block");
        const uint8_t *form = nullptr;
        if (!in.varint(bucket) || bucket >= buckets_.size() || !in.varint(size) || !in.bytes(1, form))
            damaged("an entry does not fit its block");
        entry.size = size == 0 ? -1 : static_cast<int64_t>(size - 1);
        entry.etag.clear();
        if (*form == MD5_ETAG) {
            if (!in.bytes(16, bytes)) damaged("an ETag does not fit its block");
            char hex[32];
            write_hex(bytes, 16, hex);
            entry.etag.assign("\"").append(hex, sizeof hex).append("\"");
        } else if (*form == WRITTEN_ETAG) {
            uint64_t length = 0;
            if (!in.varint(length) || !in.bytes(length, bytes)) damaged("an ETag does not fit its block");
            entry.etag.assign(reinterpret_cast<const char *>(bytes), length);
        } else if (*form != NO_ETAG) {
            damaged("an ETag of no known form");
        }
        if (listing_) {
            if (!in.varint(storage_class) || storage_class >= storage_classes_.size() ||
                !read_shared(in, entry.last_modified))
                damaged("an entry does not fit its block");
        }
        if (i == position) {
            entry.bucket = buckets_[bucket];
            entry.storage_class = storage_classes_[storage_class];
        }
    }
    return entry;
}

ObjectIndexWriter::ObjectIndexWriter(const std::string &path, bool listing) : path_(path), listing_(listing) {
    init_crt_library();  // aws-c-cal's SHA-256
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) throw_errno(path);
    file_ = ::fdopen(fd, "wb");
    if (file_ == nullptr) {
        const int error = errno;
        ::close(fd);
        ::unlink(path.c_str());
        throw IndexFileError(error, path);
    }
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
    sha256_ = aws_sha256_new(aws_default_allocator());
    if (sha256_ == nullptr) {
        abandon();
        throw std::runtime_error("cannot start a SHA-256 digest");
    }
    const char zeros[BLOCKS_START] = {};
    write(zeros, sizeof zeros);  // the header's place: written last, when it is known
}

ObjectIndexWriter::~ObjectIndexWriter() {
    if (file_ != nullptr) abandon();
    if (sha256_ != nullptr) aws_hash_destroy(sha256_);
}

void ObjectIndexWriter::write(const void *bytes, size_t length) {
    if (length != 0 && std::fwrite(bytes, 1, length, file_) != length) throw_errno(path_);
    offset_ += length;
}

void ObjectIndexWriter::hash_key(std::string_view key) {
    hash_buffer_.append(key);
    hash_buffer_.push_back('\0');
    if (hash_buffer_.size() >= (64u << 10)) {
        const aws_byte_cursor bytes = aws_byte_cursor_from_array(hash_buffer_.data(), hash_buffer_.size());
        if (aws_hash_update(sha256_, &bytes) != 0) throw std::runtime_error("SHA-256 update failed");
        hash_buffer_.clear();
    }
}

namespace {

// The number of `name` in a table of names, added when new; numbered from `first`.
uint32_t number_of(std::string_view name, std::map<std::string, uint32_t, std::less<>> &numbers,
                   std::vector<std::string> &names, uint32_t first) {
    auto found = numbers.find(name);
    if (found == numbers.end()) {
        if (name.size() > UINT32_MAX) throw std::invalid_argument("name too long for an object index");
        found = numbers.emplace(std::string(name), static_cast<uint32_t>(names.size()) + first).first;
        names.emplace_back(name);
    }
    return found->second;
}

}  // namespace

void ObjectIndexWriter::add(std::string_view bucket, std::string_view key, int64_t size, std::string_view etag,
                            std::string_view storage_class, std::string_view last_modified) {
    if (file_ == nullptr) throw std::logic_error("the index is finished");
    const uint32_t bucket_number = number_of(bucket, bucket_numbers_, buckets_, 0);
    if (in_block_ == 0) {
        block_offsets_.push_back(offset_ + block_.size());
        previous_key_.clear();  // a block's first entry shares nothing: it is where decoding starts
        previous_last_modified_.clear();
    }
    put_shared(block_, previous_key_, key);
    put_varint(block_, bucket_number);
    put_varint(block_, size < 0 ? 0 : static_cast<uint64_t>(size) + 1);
    if (size < 0 || etag.empty()) {
        block_.push_back(static_cast<char>(NO_ETAG));
    } else if (is_md5_etag(etag)) {
        block_.push_back(static_cast<char>(MD5_ETAG));
        for (size_t i = 1; i < 33; i += 2)
            block_.push_back(static_cast<char>(hex_value(etag[i]) << 4 | hex_value(etag[i + 1])));
    } else {
        block_.push_back(static_cast<char>(WRITTEN_ETAG));
        put_varint(block_, etag.size());
        block_.append(etag);
    }
    if (listing_) {
        put_varint(block_,
                   storage_class.empty() ? 0 : number_of(storage_class, storage_class_numbers_, storage_classes_, 1));
        put_shared(block_, previous_last_modified_, last_modified);
        previous_last_modified_.assign(last_modified);
    }
    previous_key_.assign(key);
    hash_key(key);
    ++count_;
    if (++in_block_ == BLOCK_ENTRIES) flush_block();
}

void ObjectIndexWriter::flush_block() {
    write(block_.data(), block_.size());
    block_.clear();
    in_block_ = 0;
}

void ObjectIndexWriter::finish() {
    if (file_ == nullptr) throw std::logic_error("the index is finished");
    flush_block();
    const char zeros[8] = {};
    write(zeros, (8 - offset_ % 8) % 8);
    Header header{};
    std::memcpy(header.magic, MAGIC, sizeof MAGIC);
    header.byte_order = BYTE_ORDER_MARK;
    header.version = OBJECT_INDEX_VERSION;
    header.block_entries = BLOCK_ENTRIES;
    header.bucket_count = static_cast<uint32_t>(buckets_.size());
    header.listing = listing_ ? 1 : 0;
    header.storage_class_count = static_cast<uint32_t>(storage_classes_.size());
    header.count = count_;
    header.blocks_end = offset_;
    write(block_offsets_.data(), block_offsets_.size() * sizeof(uint64_t));
    header.buckets_start = offset_;
    for (const auto *table : {&buckets_, &storage_classes_}) {
        for (const auto &name : *table) {
            const auto length = static_cast<uint32_t>(name.size());
            write(&length, sizeof length);
            write(name.data(), name.size());
        }
    }
    header.file_size = offset_;
    const aws_byte_cursor rest = aws_byte_cursor_from_array(hash_buffer_.data(), hash_buffer_.size());
    uint8_t digest[32];
    aws_byte_buf out = aws_byte_buf_from_empty_array(digest, sizeof digest);
    if (aws_hash_update(sha256_, &rest) != 0 || aws_hash_finalize(sha256_, &out, 0) != 0)
        throw std::runtime_error("SHA-256 failed");
    write_hex(digest, sizeof digest, header.keys_digest);
    if (std::fseek(file_, 0, SEEK_SET) != 0 || std::fwrite(&header, sizeof header, 1, file_) != 1) throw_errno(path_);
    std::FILE *file = file_;
    file_ = nullptr;
    if (std::fclose(file) != 0) {
        const int error = errno;
        ::unlink(path_.c_str());
        throw IndexFileError(error, path_);
    }
}

void ObjectIndexWriter::abandon() {
    if (file_ != nullptr) {
        std::fclose(file_);
        file_ = nullptr;
        ::unlink(path_.c_str());
    }
}

}  // namespace s3tc
