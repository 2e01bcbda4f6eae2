#include "logging.h"

#include "gil.h"
#include "redact.h"
#include "runtime.h"

#include <aws/common/logging.h>
#include <aws/common/package.h>

#include <pybind11/pybind11.h>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>

namespace s3tc {
namespace {

constexpr size_t subject_count = AWS_PACKAGE_SLOTS * AWS_LOG_SUBJECT_STRIDE;
constexpr const char *log_file_prefix = "s3torchconnectorclient.log";

// What Python has not taken yet is bounded: beyond either limit, new records are dropped and counted.
constexpr size_t max_queued_records = 10000;
constexpr size_t max_queued_bytes = 8u << 20;

// A sink's level lives in one half of a byte, the writer's low, Python's high: one load answers the CRT.
int level_of(uint8_t packed, LogSink sink) { return sink == LogSink::writer ? packed & 0xF : packed >> 4; }
uint8_t with_level(uint8_t packed, LogSink sink, int level) {
    return sink == LogSink::writer ? static_cast<uint8_t>((packed & 0xF0) | level)
                                   : static_cast<uint8_t>((packed & 0x0F) | (level << 4));
}
int either_level(uint8_t packed) { return std::max(packed & 0xF, packed >> 4); }

// The process's logging state. Made once and never destroyed: CRT threads may log while the process
// exits, and a condition variable with a waiter must not be destroyed.
struct State {
    // Targets, built once after the CRT library is initialised; never changed afterwards.
    std::vector<std::string> targets;                 // "awscrt::<name>" per registered subject, then the two below
    std::array<uint16_t, subject_count> target_of{};  // subject id -> index in targets
    size_t crt_fallback = 0;                          // index of "awscrt", for subjects with no registered name
    size_t native = 0;                                // index of native_log_target

    std::array<std::atomic<uint8_t>, subject_count> subject_levels{};
    std::atomic<uint8_t> native_levels{0};
    std::atomic<int> max_level{0};

    std::mutex config_mutex;  // targets, installing the logger, set_log_levels
    bool installed = false;
    aws_logger logger{};

    std::mutex writer_mutex;  // the writer's file, and the order of its lines
    std::string directory;    // "" for stderr
    int file = -1;
    long file_hour = -1;  // hours since the epoch of the open file
    bool reported_open_failure = false;

    std::mutex queue_mutex;
    std::condition_variable queue_ready;
    std::deque<LogRecord> queue;
    size_t queued_bytes = 0;
    uint64_t dropped = 0;
    uint64_t batches = 0;  // how many waiting takes have returned
};

State &state() {
    static State *made = new State();
    return *made;
}

std::string vformat(const char *format, va_list args) {
    char small[512];
    va_list copy;
    va_copy(copy, args);
    int needed = std::vsnprintf(small, sizeof small, format, copy);
    va_end(copy);
    if (needed < 0) return format;
    if (static_cast<size_t>(needed) < sizeof small) return std::string(small, static_cast<size_t>(needed));
    std::string text(static_cast<size_t>(needed) + 1, '\0');
    std::vsnprintf(&text[0], text.size(), format, args);
    text.resize(static_cast<size_t>(needed));
    return text;
}

void write_all(int fd, const std::string &text) {
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        done += static_cast<size_t>(n);
    }
}

// Like the original's (tracing's) plain-text lines: "2024-05-01T13:04:05.123456Z DEBUG awscrt::S3Client: message".
std::string format_line(const std::string &target, int level, std::chrono::system_clock::time_point when,
                        const std::string &message) {
    static const char *const names[] = {"OFF", "ERROR", "ERROR", " WARN", " INFO", "DEBUG", "TRACE"};
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count();
    const time_t seconds = static_cast<time_t>(micros / 1000000);
    tm utc;
    gmtime_r(&seconds, &utc);
    char stamp[40];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ ", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(micros % 1000000));
    std::string line;
    line.reserve(64 + target.size() + message.size());
    line += stamp;
    line += names[std::clamp(level, 0, 6)];
    line += ' ';
    line += target;
    line += ": ";
    line += message;
    line += '\n';
    return line;
}

// With writer_mutex held: the descriptor for a line logged at `when`, opening this hour's file when needed.
int writer_fd(State &s, std::chrono::system_clock::time_point when) {
    if (s.directory.empty()) return STDERR_FILENO;
    const long seconds = static_cast<long>(std::chrono::system_clock::to_time_t(when));
    const long hour = seconds / 3600;
    if (s.file >= 0 && hour == s.file_hour) return s.file;
    const time_t start = static_cast<time_t>(hour * 3600);
    tm utc;
    gmtime_r(&start, &utc);
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".%04d-%02d-%02d-%02d", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                  utc.tm_hour);
    const std::string path = s.directory + "/" + log_file_prefix + suffix;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (!s.reported_open_failure) {
            s.reported_open_failure = true;
            write_all(STDERR_FILENO, "s3torchconnector: cannot open the log file " + path + " (" +
                                         std::strerror(errno) + "); its lines are lost\n");
        }
        return -1;
    }
    if (s.file >= 0) ::close(s.file);
    s.file = fd;
    s.file_hour = hour;
    return fd;
}

void emit(size_t target, uint8_t levels, int level, const char *format, va_list args) {
    const bool to_writer = level <= level_of(levels, LogSink::writer);
    const bool to_python = level <= level_of(levels, LogSink::python);
    if (!to_writer && !to_python) return;
    State &s = state();
    const auto now = std::chrono::system_clock::now();
    std::string message = vformat(format, args);
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.pop_back();
    redact_credentials(message);
    if (to_writer) {
        const std::string line = format_line(s.targets[target], level, now, message);
        std::lock_guard<std::mutex> lock(s.writer_mutex);
        int fd = writer_fd(s, now);
        if (fd >= 0) write_all(fd, line);
    }
    if (to_python) {
        const double time = std::chrono::duration<double>(now.time_since_epoch()).count();
        const long thread = static_cast<long>(::syscall(SYS_gettid));
        std::lock_guard<std::mutex> lock(s.queue_mutex);
        if (s.queue.size() >= max_queued_records || s.queued_bytes + message.size() > max_queued_bytes) {
            ++s.dropped;
            return;
        }
        const bool was_empty = s.queue.empty();
        s.queued_bytes += message.size();
        s.queue.push_back(LogRecord{&s.targets[target], level, time, thread, std::move(message)});
        if (was_empty) s.queue_ready.notify_one();
    }
}

// The CRT logger's functions. They never take the GIL nor wait for anything but our own short locks.
int crt_log(aws_logger *, aws_log_level level, aws_log_subject_t subject, const char *format, ...) {
    if (subject >= subject_count) return AWS_OP_SUCCESS;
    State &s = state();
    va_list args;
    va_start(args, format);
    emit(s.target_of[subject], s.subject_levels[subject].load(std::memory_order_relaxed), level, format, args);
    va_end(args);
    return AWS_OP_SUCCESS;
}

aws_log_level crt_get_log_level(aws_logger *, aws_log_subject_t subject) {
    if (subject >= subject_count) return AWS_LL_NONE;
    return static_cast<aws_log_level>(either_level(state().subject_levels[subject].load(std::memory_order_relaxed)));
}

void crt_clean_up(aws_logger *) {}

int crt_set_log_level(aws_logger *, aws_log_level) { return aws_raise_error(AWS_ERROR_UNIMPLEMENTED); }

aws_logger_vtable crt_logger_vtable = {crt_log, crt_get_log_level, crt_clean_up, crt_set_log_level};

// With config_mutex held: the targets, from the names the CRT registered for its subjects.
void build_targets(State &s) {
    if (!s.targets.empty()) return;
    init_crt_library();
    const std::string unknown = aws_log_subject_name(subject_count);  // what an unregistered subject is called
    std::vector<std::pair<aws_log_subject_t, std::string>> named;
    for (aws_log_subject_t subject = 0; subject < subject_count; ++subject) {
        const char *name = aws_log_subject_name(subject);
        if (name != nullptr && unknown != name) named.emplace_back(subject, std::string(crt_log_target) + "::" + name);
    }
    // A few subjects share a name (and so a target).
    std::map<std::string, uint16_t> index;
    std::vector<std::pair<aws_log_subject_t, uint16_t>> subject_targets;
    for (auto &entry : named) {
        auto found = index.find(entry.second);
        if (found == index.end()) {
            found = index.emplace(entry.second, static_cast<uint16_t>(s.targets.size())).first;
            s.targets.push_back(entry.second);
        }
        subject_targets.emplace_back(entry.first, found->second);
    }
    s.crt_fallback = s.targets.size();
    s.targets.push_back(crt_log_target);
    s.native = s.targets.size();
    s.targets.push_back(native_log_target);
    s.target_of.fill(static_cast<uint16_t>(s.crt_fallback));
    for (const auto &entry : subject_targets) s.target_of[entry.first] = entry.second;
}

}  // namespace

// Fork (fork.h, rule 3): no thread holds a lock of ours while the child is made, so the child's copies are
// consistent. The child gets fresh locks and an empty queue (the parent's records are the parent's to drain);
// the thread that waited on the queue was not copied.
void logging_before_fork() {
    State &s = state();
    s.config_mutex.lock();
    s.writer_mutex.lock();
    s.queue_mutex.lock();
}

void logging_after_fork_in_parent() {
    State &s = state();
    s.queue_mutex.unlock();
    s.writer_mutex.unlock();
    s.config_mutex.unlock();
}

void logging_after_fork_in_child() {
    State &s = state();
    s.queue.clear();
    s.queued_bytes = 0;
    s.dropped = 0;
    s.batches = 0;
    // The old condition variable may count the parent's waiter: replace it rather than destroy it.
    new (&s.queue_ready) std::condition_variable();
    s.queue_mutex.unlock();
    s.writer_mutex.unlock();
    s.config_mutex.unlock();
}

std::vector<std::string> log_targets() {
    State &s = state();
    std::lock_guard<std::mutex> lock(s.config_mutex);
    build_targets(s);
    return s.targets;
}

void set_log_levels(LogSink sink, const std::map<std::string, int> &levels) {
    State &s = state();
    std::lock_guard<std::mutex> lock(s.config_mutex);
    build_targets(s);
    for (const auto &entry : levels) {
        if (entry.second < AWS_LL_NONE || entry.second > AWS_LL_TRACE) {
            throw std::invalid_argument("log level " + std::to_string(entry.second) + " for " + entry.first +
                                        " is not a CRT level (0 none to 6 trace)");
        }
        if (std::find(s.targets.begin(), s.targets.end(), entry.first) == s.targets.end()) {
            throw std::invalid_argument("no log target is called '" + entry.first + "'");
        }
    }
    std::vector<int> by_target(s.targets.size(), AWS_LL_NONE);
    for (size_t i = 0; i < s.targets.size(); ++i) {
        auto found = levels.find(s.targets[i]);
        if (found != levels.end()) by_target[i] = found->second;
    }
    int most = AWS_LL_NONE;
    for (size_t subject = 0; subject < subject_count; ++subject) {
        uint8_t packed = with_level(s.subject_levels[subject].load(), sink, by_target[s.target_of[subject]]);
        s.subject_levels[subject].store(packed, std::memory_order_relaxed);
        most = std::max(most, either_level(packed));
    }
    uint8_t native = with_level(s.native_levels.load(), sink, by_target[s.native]);
    s.native_levels.store(native, std::memory_order_relaxed);
    most = std::max(most, either_level(native));
    s.max_level.store(most);
    if (most > AWS_LL_NONE && !s.installed) {
        s.logger.vtable = &crt_logger_vtable;
        s.logger.allocator = aws_default_allocator();
        s.logger.p_impl = nullptr;
        std::atomic_thread_fence(std::memory_order_release);
        aws_logger_set(&s.logger);
        s.installed = true;
    }
}

void set_log_directory(const std::string &directory) {
    State &s = state();
    std::lock_guard<std::mutex> lock(s.writer_mutex);
    if (directory == s.directory) return;
    if (s.file >= 0) ::close(s.file);
    s.file = -1;
    s.file_hour = -1;
    s.reported_open_failure = false;
    s.directory = directory;
}

int log_level() { return state().max_level.load(); }

void log_native(int level, const char *format, ...) {
    State &s = state();
    const uint8_t levels = s.native_levels.load(std::memory_order_relaxed);
    if (level <= AWS_LL_NONE || level > either_level(levels)) return;
    va_list args;
    va_start(args, format);
    emit(s.native, levels, level, format, args);
    va_end(args);
}

std::vector<LogRecord> take_log_records(bool wait, uint64_t &dropped, uint64_t &batch) {
    State &s = state();
    std::vector<LogRecord> records;
    auto take = [&] {
        records.reserve(s.queue.size());
        for (auto &record : s.queue) records.push_back(std::move(record));
        s.queue.clear();
        s.queued_bytes = 0;
        dropped = s.dropped;
        s.dropped = 0;
        if (wait) ++s.batches;
        batch = s.batches;
    };
    if (!wait) {
        std::lock_guard<std::mutex> lock(s.queue_mutex);
        take();
        return records;
    }
    {
        GilReleased no_gil;  // the drain is a daemon thread: parked, not ended, when the interpreter exits
        std::unique_lock<std::mutex> lock(s.queue_mutex);
        s.queue_ready.wait(lock, [&] { return !s.queue.empty() || s.dropped > 0; });
        take();
    }
    return records;
}

}  // namespace s3tc
