// A CRT retry strategy that grants every request exactly one attempt (max_attempts=1).
// The CRT's own "no retry" strategy refuses even the first attempt.
#pragma once

struct aws_allocator;
struct aws_event_loop_group;
struct aws_retry_strategy;

namespace s3tc {

aws_retry_strategy *new_single_attempt_retry_strategy(aws_allocator *allocator, aws_event_loop_group *event_loops);

}  // namespace s3tc
