#include "list_result.h"

#include <cstdint>
#include <cstring>

namespace s3tc {
namespace {

constexpr int MAX_DEPTH = 16;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_name_end(char c) { return is_space(c) || c == '>' || c == '/'; }

void append_utf8(std::string &out, uint32_t code) {
    if (code < 0x80) {
        out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (code >> 6)));
        out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (code >> 12)));
        out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (code >> 18)));
        out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
}

// A numeric character reference's code point ("#38", "#x26"); false when it is not one XML allows.
bool parse_character_reference(std::string_view digits, uint32_t &code) {
    int base = 10;
    if (!digits.empty() && digits.front() == 'x') {
        base = 16;
        digits.remove_prefix(1);
    }
    if (digits.empty() || digits.size() > 8) return false;
    code = 0;
    for (const char c : digits) {
        int value = -1;
        if (c >= '0' && c <= '9') value = c - '0';
        if (base == 16 && c >= 'a' && c <= 'f') value = c - 'a' + 10;
        if (base == 16 && c >= 'A' && c <= 'F') value = c - 'A' + 10;
        if (value < 0) return false;
        code = code * static_cast<uint32_t>(base) + static_cast<uint32_t>(value);
    }
    return code != 0 && code <= 0x10FFFF && !(code >= 0xD800 && code <= 0xDFFF);
}

class Reader {
public:
    explicit Reader(std::string_view document) : at_(document.data()), end_(document.data() + document.size()) {}

    // Skips the XML declaration, comments and whitespace before the root element.
    bool skip_prolog() {
        while (true) {
            skip_space();
            if (starts_with("<?")) {
                if (!skip_past("?>")) return false;
            } else if (starts_with("<!--")) {
                if (!skip_past("-->")) return false;
            } else {
                return true;
            }
        }
    }

    // An opening tag `<name ...>` (attributes skipped); `empty` when it closes itself (`<name/>`).
    bool open_tag(std::string_view &name, bool &empty) {
        if (at_ == end_ || *at_ != '<') return false;
        ++at_;
        const char *start = at_;
        while (at_ != end_ && !is_name_end(*at_)) ++at_;
        name = std::string_view(start, static_cast<size_t>(at_ - start));
        if (name.empty() || name.front() == '/' || name.front() == '!' || name.front() == '?') return false;
        char quote = 0;
        for (; at_ != end_; ++at_) {  // attributes: skipped, quotes respected
            if (quote != 0) {
                if (*at_ == quote) quote = 0;
            } else if (*at_ == '"' || *at_ == '\'') {
                quote = *at_;
            } else if (*at_ == '>') {
                empty = at_[-1] == '/';
                ++at_;
                return true;
            }
        }
        return false;
    }

    // The rest of an element whose opening tag was read, up to and including its closing tag: its text
    // (character data, references and CDATA, unescaped) into `text`; child elements are skipped.
    bool read_text(std::string_view name, std::string &out, int depth) {
        out.clear();
        return children(
            name, depth,
            [&](std::string_view child, bool empty) {
                std::string ignored;
                return empty || read_text(child, ignored, depth + 1);
            },
            &out);
    }

    // The rest of an element whose opening tag was read: `on_child(name, empty)` for each child element,
    // which must read the child's rest when it is not empty; text between them is kept in `text` when given.
    template <typename OnChild>
    bool children(std::string_view name, int depth, OnChild on_child, std::string *text = nullptr) {
        if (depth > MAX_DEPTH) return false;
        while (at_ != end_) {
            const char *lt = static_cast<const char *>(std::memchr(at_, '<', static_cast<size_t>(end_ - at_)));
            if (lt == nullptr) return false;
            const std::string_view raw(at_, static_cast<size_t>(lt - at_));
            if (text != nullptr && !unescape(raw, *text)) return false;
            at_ = lt;
            if (starts_with("</")) return close_tag(name);
            if (starts_with("<!--")) {
                if (!skip_past("-->")) return false;
            } else if (starts_with("<![CDATA[")) {
                at_ += 9;
                const char *start = at_;
                if (!skip_past("]]>")) return false;
                if (text != nullptr) text->append(start, static_cast<size_t>(at_ - 3 - start));
            } else {
                std::string_view child;
                bool empty = false;
                if (!open_tag(child, empty) || !on_child(child, empty)) return false;
            }
        }
        return false;
    }

    bool starts_with(std::string_view text) const {
        return static_cast<size_t>(end_ - at_) >= text.size() && std::memcmp(at_, text.data(), text.size()) == 0;
    }

private:
    void skip_space() {
        while (at_ != end_ && is_space(*at_)) ++at_;
    }

    bool skip_past(std::string_view marker) {
        const std::string_view rest(at_, static_cast<size_t>(end_ - at_));
        const size_t found = rest.find(marker);
        if (found == std::string_view::npos) return false;
        at_ += found + marker.size();
        return true;
    }

    bool close_tag(std::string_view name) {
        at_ += 2;
        if (static_cast<size_t>(end_ - at_) < name.size() || std::memcmp(at_, name.data(), name.size()) != 0)
            return false;
        at_ += name.size();
        skip_space();
        if (at_ == end_ || *at_ != '>') return false;
        ++at_;
        return true;
    }

    static bool unescape(std::string_view raw, std::string &out) {
        while (!raw.empty()) {
            const size_t amp = raw.find('&');
            out.append(raw.substr(0, amp));
            if (amp == std::string_view::npos) return true;
            raw.remove_prefix(amp + 1);
            const size_t semicolon = raw.find(';');
            if (semicolon == std::string_view::npos) return false;
            const std::string_view entity = raw.substr(0, semicolon);
            raw.remove_prefix(semicolon + 1);
            uint32_t code = 0;
            if (entity == "amp") {
                out.push_back('&');
            } else if (entity == "lt") {
                out.push_back('<');
            } else if (entity == "gt") {
                out.push_back('>');
            } else if (entity == "quot") {
                out.push_back('"');
            } else if (entity == "apos") {
                out.push_back('\'');
            } else if (!entity.empty() && entity.front() == '#' && parse_character_reference(entity.substr(1), code)) {
                append_utf8(out, code);
            } else {
                return false;
            }
        }
        return true;
    }

    const char *at_;
    const char *end_;
};

uint64_t size_of(const std::string &text) {
    uint64_t size = 0;
    for (const char c : text) {
        if (c < '0' || c > '9' || size > (UINT64_MAX - 9) / 10) return 0;  // as before: not a number reads as 0
        size = size * 10 + static_cast<uint64_t>(c - '0');
    }
    return size;
}

// The children of Contents this keeps; the others (Owner, ChecksumAlgorithm...) are skipped.
bool read_contents(Reader &in, ObjectInfo &info) {
    std::string text;
    return in.children("Contents", 2, [&](std::string_view name, bool empty) {
        text.clear();
        if (!empty && !in.read_text(name, text, 3)) return false;
        if (name == "Key") {
            info.key = text;
        } else if (name == "ETag") {
            info.etag = text;
        } else if (name == "Size") {
            info.size = size_of(text);
        } else if (name == "LastModified") {
            info.last_modified = text;
        } else if (name == "StorageClass") {
            info.storage_class = text;
        }
        return true;
    });
}

}  // namespace

bool parse_list_result(std::string_view document, ListResult &result) {
    Reader in(document);
    std::string_view root;
    bool empty = false;
    if (!in.skip_prolog() || !in.open_tag(root, empty) || root != "ListBucketResult") return false;
    std::string text;
    const bool read = empty || in.children(root, 1, [&](std::string_view name, bool child_empty) {
        if (child_empty) return true;
        if (name == "Contents") {
            ObjectInfo info;
            if (!read_contents(in, info)) return false;
            result.objects.push_back(std::move(info));
            return true;
        }
        if (name == "CommonPrefixes") {
            std::string prefix;
            bool found = false;
            const bool ok = in.children(name, 2, [&](std::string_view leaf, bool leaf_empty) {
                text.clear();
                if (!leaf_empty && !in.read_text(leaf, text, 3)) return false;
                if (leaf == "Prefix" && !found) {
                    prefix = text;
                    found = true;
                }
                return true;
            });
            if (ok) result.prefixes.push_back(std::move(prefix));
            return ok;
        }
        if (!in.read_text(name, text, 2)) return false;
        if (name == "NextContinuationToken") result.next_continuation_token = text;
        if (name == "IsTruncated") result.truncated = text == "true";
        return true;
    });
    return read;  // what follows the root element is not read, as the tree parser did not
}

}  // namespace s3tc
