#include "manifest_lines.h"

#include <aws/common/encoding.h>

#include <cstring>

namespace s3tc {

namespace {

// [0-9A-Za-z-], as a table: checked for every character of every ETag of the manifest.
struct EtagCharacters {
    bool in[256];
    constexpr EtagCharacters() : in() {
        for (int c = 0; c < 256; ++c)
            in[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
    }
};
constexpr EtagCharacters ETAG_CHARACTERS;

struct Line {
    std::string_view key;
    int64_t size;
    std::string_view etag;  // with its quotes
};

class Scanner {
public:
    void start(std::string_view line) {
        at_ = line.data();
        end_ = line.data() + line.size();
    }

    bool literal(std::string_view text) {
        if (static_cast<size_t>(end_ - at_) < text.size() || std::memcmp(at_, text.data(), text.size()) != 0)
            return false;
        at_ += text.size();
        return true;
    }
    void optional_space() {
        if (at_ != end_ && *at_ == ' ') ++at_;
    }
    // [^"\\\x00-\x1f]+ then the closing quote
    bool key(std::string_view &out) {
        const char *start = at_;
        while (at_ != end_ && *at_ != '"') {
            const auto c = static_cast<unsigned char>(*at_);
            if (c == '\\' || c < 0x20) return false;
            ++at_;
        }
        if (at_ == start || at_ == end_) return false;
        out = std::string_view(start, static_cast<size_t>(at_ - start));
        ++at_;
        return true;
    }
    // 0|[1-9][0-9]*, below 2**62
    bool size(int64_t &out) {
        if (at_ == end_ || *at_ < '0' || *at_ > '9') return false;
        if (*at_ == '0') {
            ++at_;
            out = 0;
            return at_ == end_ || *at_ < '0' || *at_ > '9';
        }
        uint64_t value = 0;
        while (at_ != end_ && *at_ >= '0' && *at_ <= '9') {
            value = value * 10 + static_cast<uint64_t>(*at_ - '0');
            if (value >= (uint64_t{1} << 62)) return false;
            ++at_;
        }
        out = static_cast<int64_t>(value);
        return true;
    }
    // "\"[0-9A-Za-z-]*\"": the ETag's own quotes, escaped in the JSON string, are kept
    bool etag(std::string_view &out) {
        if (!literal("\"\\\"")) return false;
        const char *start = at_;
        while (at_ != end_ && ETAG_CHARACTERS.in[static_cast<unsigned char>(*at_)]) ++at_;
        const size_t length = static_cast<size_t>(at_ - start);
        if (!literal("\\\"\"")) return false;
        etag_.assign("\"").append(start, length).append("\"");
        out = etag_;
        return true;
    }
    bool at_end() const { return at_ == end_; }

private:
    const char *at_ = nullptr;
    const char *end_ = nullptr;
    std::string etag_;  // reused from line to line: no allocation per line
};

bool valid_utf8(std::string_view text) {
    for (const char c : text) {
        if (static_cast<unsigned char>(c) >= 0x80) {
            const aws_byte_cursor bytes = aws_byte_cursor_from_array(text.data(), text.size());
            return aws_decode_utf8(bytes, nullptr) == AWS_OP_SUCCESS;
        }
    }
    return true;  // ASCII, the usual case
}

bool parse_simple_line(Scanner &in, Line &line) {
    if (!in.literal("{\"key\":")) return false;
    in.optional_space();
    if (!in.literal("\"") || !in.key(line.key) || !valid_utf8(line.key) || !in.literal(",")) return false;
    in.optional_space();
    if (!in.literal("\"size\":")) return false;
    in.optional_space();
    if (!in.size(line.size) || !in.literal(",")) return false;
    in.optional_space();
    if (!in.literal("\"etag\":")) return false;
    in.optional_space();
    return in.etag(line.etag) && in.literal("}") && in.at_end();
}

}  // namespace

SimpleLinesRead add_simple_lines(std::string_view text, size_t start, std::string_view bucket,
                                 ObjectIndexWriter &writer) {
    SimpleLinesRead read{start, 0};
    if (bucket.empty()) return read;  // a "key" needs the header's bucket: the caller explains
    Scanner in;
    Line line{};
    while (read.end < text.size()) {
        const size_t newline = text.find('\n', read.end);
        if (newline == std::string_view::npos) break;
        in.start(text.substr(read.end, newline - read.end));
        if (!parse_simple_line(in, line)) break;
        writer.add(bucket, line.key, line.size, line.etag);
        read.end = newline + 1;
        ++read.lines;
    }
    return read;
}

}  // namespace s3tc
