/* timer.h: one-shot timers embedded in their owners, kept in a binary min-heap per loop. */
#ifndef SIPSD_LOOP_TIMER_H
#define SIPSD_LOOP_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop/loop.h"

/*
 * A timer lives inside the object it serves (a transaction, a connection);
 * the loop only keeps a pointer to it while it is armed. Start and cancel
 * are O(log n), the earliest due time is O(1). Timers fire in order of due
 * time, and in start order for equal due times. A timer may be re-armed or
 * cancelled from any callback, its own included; a timer (re)started during
 * the timer phase never fires in that same phase, so a zero-delay re-arm
 * cannot spin. Owners must cancel an armed timer before freeing it.
 */
struct loop_timer {
	uint64_t due_ms;   /* absolute, loop_now_ms() clock */
	uint64_t seq;	   /* start order, breaks ties between equal due_ms */
	struct loop *loop; /* the loop it is armed on, NULL while idle */
	size_t slot;	   /* index in that loop's heap while armed */
	loop_work_fn cb;
	void *arg;
};

/* Prepare an idle timer that will call cb(arg) when it fires. Call it once
 * before any other use (re-initialising an armed timer corrupts the heap). */
void loop_timer_init(struct loop_timer *t, loop_work_fn cb, void *arg);

/* Arm `t` on `loop` to fire `delay_ms` after loop_now_ms(); an armed timer
 * is moved (never fires twice). A timer armed on another loop is first
 * cancelled there (both loops must belong to the calling thread). Returns 0,
 * -EINVAL when `t` has no callback (never initialised), or -ENOMEM when the
 * heap could not grow (the timer is then idle). */
int loop_timer_start(struct loop *loop, struct loop_timer *t, uint64_t delay_ms);

/* As loop_timer_start() at an absolute loop_now_ms() time; a time already
 * past fires at the next timer phase. */
int loop_timer_start_at(struct loop *loop, struct loop_timer *t, uint64_t due_ms);

/* Disarm `t`; a no-op when idle (never started, already fired, already
 * cancelled, or its loop destroyed). */
void loop_timer_cancel(struct loop_timer *t);

static inline bool loop_timer_is_armed(const struct loop_timer *t)
{
	return t->loop != NULL;
}

/* Milliseconds from loop_now_ms() until `t` is due (0 when overdue), or
 * UINT64_MAX when idle. */
uint64_t loop_timer_remaining(const struct loop_timer *t);

/* ---- Used by loop.c only. ---- */

/* One heap slot: the keys are copied next to the pointer so that sifting
 * reads one array, not scattered timers. */
struct loop_timer_slot {
	uint64_t due_ms;
	uint64_t seq;
	struct loop_timer *t;
};

/* The heap of armed timers of one loop. */
struct loop_timers {
	struct loop_timer_slot *v;
	size_t len;
	size_t cap;
	uint64_t next_seq;
};

/* The loop's heap (defined in loop.c). */
struct loop_timers *loop_timers_of(struct loop *loop);

/* Empty heap / detach every armed timer and free the array. */
void loop_timers_init(struct loop_timers *h);
void loop_timers_fini(struct loop_timers *h);

/* Milliseconds until the earliest timer from `now` (0 when due), or -1
 * with no timers; clipped to INT32_MAX for epoll_wait(). */
int loop_timers_timeout(const struct loop_timers *h, uint64_t now);

/* Fire every timer due at loop_now_ms(loop) that was armed before this
 * call; returns how many fired. */
unsigned loop_timers_run(struct loop *loop);

#endif
