// A torch.profiler span around a wait on S3, so that a user's trace shows where the caller waited.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

namespace s3tc {

// Records "s3torchconnector.<operation>" while a profiler runs; otherwise costs one lookup in sys.modules.
// The module does not link against torch, so the span goes through torch.autograd.profiler.record_function.
// Made and destroyed with the GIL held: declare it before the scope's GilReleased. Never fails the call it
// measures: a span that cannot be recorded is left out.
class ProfilerSpan {
public:
    explicit ProfilerSpan(const std::string &operation);
    ~ProfilerSpan();
    ProfilerSpan(const ProfilerSpan &) = delete;
    ProfilerSpan &operator=(const ProfilerSpan &) = delete;

private:
    pybind11::object record_;
};

}  // namespace s3tc
