/* timer.c: binary min-heap of embedded timers, ordered by (due time, start order). */
#include "loop/timer.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#define TIMERS_INITIAL_CAP 64

/* Strict order: earlier due first, then earlier start. */
static inline bool slot_before(const struct loop_timer_slot *a, const struct loop_timer_slot *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static inline void heap_place(struct loop_timers *h, size_t i, struct loop_timer_slot e)
{
	h->v[i] = e;
	e.t->slot = i;
}

/* Move the entry at `i` towards the root while it precedes its parent. */
static void heap_sift_up(struct loop_timers *h, size_t i)
{
	struct loop_timer_slot e = h->v[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!slot_before(&e, &h->v[parent]))
			break;
		heap_place(h, i, h->v[parent]);
		i = parent;
	}
	heap_place(h, i, e);
}

/* Move the entry at `i` towards the leaves while a child precedes it. */
static void heap_sift_down(struct loop_timers *h, size_t i)
{
	struct loop_timer_slot e = h->v[i];
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= h->len)
			break;
		if (child + 1 < h->len && slot_before(&h->v[child + 1], &h->v[child]))
			child++;
		if (!slot_before(&h->v[child], &e))
			break;
		heap_place(h, i, h->v[child]);
		i = child;
	}
	heap_place(h, i, e);
}

/* Re-establish the order around slot `i` after its key changed. */
static void heap_fix(struct loop_timers *h, size_t i)
{
	if (i > 0 && slot_before(&h->v[i], &h->v[(i - 1) / 2]))
		heap_sift_up(h, i);
	else
		heap_sift_down(h, i);
}

/* Take the timer at slot `i` out of the heap and mark it idle. */
static void heap_remove(struct loop_timers *h, size_t i)
{
	struct loop_timer *t = h->v[i].t;
	h->len--;
	if (i < h->len) {
		heap_place(h, i, h->v[h->len]);
		heap_fix(h, i);
	}
	t->loop = NULL;
	t->slot = 0;
}

void loop_timers_init(struct loop_timers *h)
{
	h->v = NULL;
	h->len = 0;
	h->cap = 0;
	h->next_seq = 0;
}

void loop_timers_fini(struct loop_timers *h)
{
	for (size_t i = 0; i < h->len; i++) {
		h->v[i].t->loop = NULL;
		h->v[i].t->slot = 0;
	}
	free(h->v);
	loop_timers_init(h);
}

int loop_timers_timeout(const struct loop_timers *h, uint64_t now)
{
	if (h->len == 0)
		return -1;
	uint64_t due = h->v[0].due_ms;
	if (due <= now)
		return 0;
	uint64_t wait = due - now;
	return wait > INT32_MAX ? INT32_MAX : (int)wait;
}

unsigned loop_timers_run(struct loop *loop)
{
	struct loop_timers *h = loop_timers_of(loop);
	/* Timers started from here on get seq >= limit and due >= now, so they
	 * sort after every timer that is due now: stopping at the first one
	 * leaves no older due timer behind. */
	uint64_t limit = h->next_seq;
	unsigned fired = 0;
	while (h->len > 0) {
		if (h->v[0].due_ms > loop_now_ms(loop) || h->v[0].seq >= limit)
			break;
		struct loop_timer *t = h->v[0].t;
		heap_remove(h, 0);
		fired++;
		t->cb(t->arg); /* may free, re-arm or cancel anything, t included */
	}
	return fired;
}

void loop_timer_init(struct loop_timer *t, loop_work_fn cb, void *arg)
{
	t->due_ms = 0;
	t->seq = 0;
	t->loop = NULL;
	t->slot = 0;
	t->cb = cb;
	t->arg = arg;
}

int loop_timer_start_at(struct loop *loop, struct loop_timer *t, uint64_t due_ms)
{
	if (t->cb == NULL)
		return -EINVAL;
	struct loop_timers *h = loop_timers_of(loop);
	uint64_t now = loop_now_ms(loop);
	if (due_ms < now)
		due_ms = now; /* keeps the ordering argument of loop_timers_run() */

	if (t->loop != NULL && t->loop != loop)
		loop_timer_cancel(t);

	if (t->loop == loop) {
		/* Already armed here: re-key in place, cannot fail. */
		t->due_ms = due_ms;
		t->seq = h->next_seq++;
		h->v[t->slot].due_ms = t->due_ms;
		h->v[t->slot].seq = t->seq;
		heap_fix(h, t->slot);
		return 0;
	}

	if (h->len == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : TIMERS_INITIAL_CAP;
		if (ncap > SIZE_MAX / sizeof(*h->v))
			return -ENOMEM;
		struct loop_timer_slot *nv = loop_mem_realloc(h->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		h->v = nv;
		h->cap = ncap;
	}
	t->due_ms = due_ms;
	t->seq = h->next_seq++;
	t->loop = loop;
	size_t i = h->len++;
	heap_place(h, i, (struct loop_timer_slot){t->due_ms, t->seq, t});
	heap_sift_up(h, i);
	return 0;
}

int loop_timer_start(struct loop *loop, struct loop_timer *t, uint64_t delay_ms)
{
	uint64_t now = loop_now_ms(loop);
	uint64_t due = delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms;
	return loop_timer_start_at(loop, t, due);
}

void loop_timer_cancel(struct loop_timer *t)
{
	if (t->loop == NULL)
		return;
	heap_remove(loop_timers_of(t->loop), t->slot);
}

uint64_t loop_timer_remaining(const struct loop_timer *t)
{
	if (t->loop == NULL)
		return UINT64_MAX;
	uint64_t now = loop_now_ms(t->loop);
	return t->due_ms > now ? t->due_ms - now : 0;
}
