// Native logs: one CRT logger per process, feeding two sinks.
//
//  - the writer: stderr, or hourly files in a folder (S3_TORCH_CONNECTOR_DEBUG_LOGS and
//    S3_TORCH_CONNECTOR_LOGS_DIR_PATH, as the original honours them); lines are written by the
//    thread that logs;
//  - the Python sink: a bounded queue of records that a Python thread drains into `logging`
//    (overflow is dropped and counted). Logging threads never touch Python or the GIL.
//
// Every record has a target: "awscrt::<subject>" for the CRT's own log subjects (e.g.
// "awscrt::S3MetaRequest"), or native_log_target for this module's own messages. Each sink has
// a level per target, set from Python; which levels to use is the Python layer's policy.
// Until a level is set above none, no CRT logger is installed: logging costs nothing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace s3tc {

// Levels are the CRT's (enum aws_log_level): 0 none, 1 fatal, 2 error, 3 warn, 4 info, 5 debug, 6 trace.
constexpr int log_level_none = 0;
constexpr int log_level_error = 2;
constexpr int log_level_warn = 3;
constexpr int log_level_info = 4;
constexpr int log_level_debug = 5;

// The target of this module's own messages (the original's Python extension crate's name).
constexpr const char *native_log_target = "s3torchconnectorclient";
// The prefix of the CRT's targets; alone, as a key of set_log_levels, it covers subjects not registered by name.
constexpr const char *crt_log_target = "awscrt";

enum class LogSink { writer, python };

// Every target there is: "awscrt::<name>" for each log subject the CRT has registered, then native_log_target.
std::vector<std::string> log_targets();

// Sets one sink's level for each target (those absent are off). Installs the CRT logger, once per process,
// the first time any level is above none.
void set_log_levels(LogSink sink, const std::map<std::string, int> &levels);

// Where the writer sink writes: "" for stderr, or an existing folder for files named
// s3torchconnectorclient.log.YYYY-MM-DD-HH, a new one each hour (UTC), appended to.
void set_log_directory(const std::string &directory);

// The most detailed level any target has in any sink: none when nothing is logged.
int log_level();

// A message of this module (target native_log_target); formatted only when a sink takes its level.
void log_native(int level, const char *format, ...) __attribute__((format(printf, 2, 3)));

struct LogRecord {
    const std::string *target;  // one of log_targets()' strings, alive for the process
    int level;
    double time;  // seconds since the epoch
    long thread;  // native thread id of the logging thread
    std::string message;
};

// The records queued for Python, oldest first, and how many were dropped (the queue was full) since the last call.
// With `wait`, blocks until there is at least one; the caller holds the GIL, which is released while waiting.
// Never returns while the interpreter is shutting down (a daemon thread must not take the GIL then).
// `batch` numbers the waiting takes: that one's own, or (without `wait`) the last one's, so a caller can tell
// when the records another thread took before it have been handled.
std::vector<LogRecord> take_log_records(bool wait, uint64_t &dropped, uint64_t &batch);

// The fork handlers' part for the logger (fork.h, rule 3).
void logging_before_fork();
void logging_after_fork_in_parent();
void logging_after_fork_in_child();

}  // namespace s3tc
