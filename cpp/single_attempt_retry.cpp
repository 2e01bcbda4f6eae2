#include "single_attempt_retry.h"

#include <aws/common/task_scheduler.h>
#include <aws/io/event_loop.h>
#include <aws/io/retry_strategy.h>

namespace s3tc {
namespace {

struct Strategy {
    aws_retry_strategy base;
    aws_event_loop_group *event_loops;
};

// The grant is delivered from an event loop, as the CRT's strategies do, never re-entrantly.
struct Grant {
    aws_task task;
    aws_retry_token *token;
    aws_retry_strategy_on_retry_token_acquired_fn *on_acquired;
    void *user_data;
};

void deliver_grant(aws_task *task, void *arg, aws_task_status) {
    (void)task;
    auto *grant = static_cast<Grant *>(arg);
    aws_retry_strategy *strategy = grant->token->retry_strategy;
    grant->on_acquired(strategy, AWS_ERROR_SUCCESS, grant->token, grant->user_data);
    aws_mem_release(strategy->allocator, grant);
}

int acquire_token(aws_retry_strategy *strategy, const aws_byte_cursor *,
                  aws_retry_strategy_on_retry_token_acquired_fn *on_acquired, void *user_data, uint64_t) {
    auto *token = static_cast<aws_retry_token *>(aws_mem_calloc(strategy->allocator, 1, sizeof(aws_retry_token)));
    token->allocator = strategy->allocator;
    token->retry_strategy = strategy;
    aws_retry_strategy_acquire(strategy);
    aws_atomic_init_int(&token->ref_count, 1);

    auto *grant = static_cast<Grant *>(aws_mem_calloc(strategy->allocator, 1, sizeof(Grant)));
    grant->token = token;
    grant->on_acquired = on_acquired;
    grant->user_data = user_data;
    aws_task_init(&grant->task, deliver_grant, grant, "s3tc_single_attempt_grant");
    auto *self = static_cast<Strategy *>(strategy->impl);
    aws_event_loop_schedule_task_now(aws_event_loop_group_get_next_loop(self->event_loops), &grant->task);
    return AWS_OP_SUCCESS;
}

int schedule_retry(aws_retry_token *, aws_retry_error_type, aws_retry_strategy_on_retry_ready_fn *, void *) {
    return aws_raise_error(AWS_IO_MAX_RETRIES_EXCEEDED);
}

int record_success(aws_retry_token *) { return AWS_OP_SUCCESS; }

void release_token(aws_retry_token *token) {
    aws_retry_strategy *strategy = token->retry_strategy;
    aws_mem_release(token->allocator, token);
    aws_retry_strategy_release(strategy);
}

void destroy(aws_retry_strategy *strategy) {
    auto *self = static_cast<Strategy *>(strategy->impl);
    aws_event_loop_group_release(self->event_loops);
    aws_mem_release(strategy->allocator, self);
}

// Filled by name: a CRT that reorders or adds members leaves the others null, not mismatched.
aws_retry_strategy_vtable make_vtable() {
    aws_retry_strategy_vtable made = {};
    made.destroy = destroy;
    made.acquire_token = acquire_token;
    made.schedule_retry = schedule_retry;
    made.record_success = record_success;
    made.release_token = release_token;
    return made;
}
aws_retry_strategy_vtable vtable = make_vtable();

}  // namespace

aws_retry_strategy *new_single_attempt_retry_strategy(aws_allocator *allocator, aws_event_loop_group *event_loops) {
    auto *self = static_cast<Strategy *>(aws_mem_calloc(allocator, 1, sizeof(Strategy)));
    self->base.allocator = allocator;
    self->base.impl = self;
    self->base.vtable = &vtable;
    aws_atomic_init_int(&self->base.ref_count, 1);
    self->event_loops = aws_event_loop_group_acquire(event_loops);
    return &self->base;
}

}  // namespace s3tc
