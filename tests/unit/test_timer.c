/* test_timer.c: timer heap order, cancel, re-arm, same-iteration cancel, scale, failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loop/loop.h"
#include "loop/timer.h"

/* Every wait in these tests is bounded: iterations by count, and the whole
 * process by alarm() in main(). */
#define MAX_ITER 100000

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rng_next(void)
{
	/* xorshift64*: deterministic, good enough for test data */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

static uint64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int setup_loop(void **state)
{
	struct loop *loop;
	if (loop_create(&loop) != 0)
		return -1;
	*state = loop;
	return 0;
}

static int teardown_loop(void **state)
{
	loop_destroy(*state);
	loop_mem_fail_after(-1);
	return 0;
}

/* An owner with an embedded timer that records when and in which order it
 * fired. */
struct owner {
	struct loop_timer timer;
	struct loop *loop;
	unsigned id;
	uint64_t due;
	uint64_t fired_at;
	unsigned fired;
	unsigned *log; /* shared firing log */
	unsigned *nlog;
	unsigned rearm; /* re-arm this many more times */
	uint64_t rearm_delay;
	struct owner *victim; /* cancel this one when firing */
	bool victim_restart;
};

static void owner_fire_cb(void *arg)
{
	struct owner *o = arg;
	o->fired++;
	o->fired_at = loop_now_ms(o->loop);
	if (o->log)
		o->log[(*o->nlog)++] = o->id;
	if (o->victim) {
		loop_timer_cancel(&o->victim->timer);
		if (o->victim_restart)
			assert_int_equal(loop_timer_start(o->loop, &o->victim->timer, 0), 0);
	}
	if (o->rearm > 0) {
		o->rearm--;
		assert_int_equal(loop_timer_start(o->loop, &o->timer, o->rearm_delay), 0);
	}
}

static void owner_init(struct owner *o, struct loop *loop, unsigned id, unsigned *log,
		       unsigned *nlog)
{
	memset(o, 0, sizeof(*o));
	o->loop = loop;
	o->id = id;
	o->log = log;
	o->nlog = nlog;
	loop_timer_init(&o->timer, owner_fire_cb, o);
}

/* Run iterations until `*count` reaches `want` (bounded). */
static void run_until_count(struct loop *loop, const unsigned *count, unsigned want)
{
	for (int i = 0; i < MAX_ITER && *count < want; i++)
		assert_true(loop_run_once(loop, 200) >= 0);
	assert_int_equal(*count, want);
}

static void test_timer_random_order(void **state)
{
	struct loop *loop = *state;
	enum { N = 100 };
	struct owner o[N];
	unsigned log[N], nlog = 0;
	for (unsigned i = 0; i < N; i++) {
		owner_init(&o[i], loop, i, log, &nlog);
		uint64_t delay = rng_next() % 40;
		o[i].due = loop_now_ms(loop) + delay;
		assert_int_equal(loop_timer_start(loop, &o[i].timer, delay), 0);
		assert_true(loop_timer_is_armed(&o[i].timer));
	}
	assert_int_equal(loop_timer_count(loop), N);
	run_until_count(loop, &nlog, N);
	assert_int_equal(loop_timer_count(loop), 0);

	/* Order: by due time, then by start order (ids were started in order). */
	for (unsigned k = 1; k < N; k++) {
		struct owner *a = &o[log[k - 1]], *b = &o[log[k]];
		assert_true(a->due < b->due || (a->due == b->due && a->id < b->id));
	}
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(o[i].fired, 1);
		assert_true(o[i].fired_at >= o[i].due);
		assert_false(loop_timer_is_armed(&o[i].timer));
	}
}

static void test_timer_equal_due_fifo(void **state)
{
	struct loop *loop = *state;
	enum { N = 16 };
	struct owner o[N];
	unsigned log[N], nlog = 0;
	uint64_t due = loop_now_ms(loop) + 5;
	for (unsigned i = 0; i < N; i++) {
		owner_init(&o[i], loop, i, log, &nlog);
		assert_int_equal(loop_timer_start_at(loop, &o[i].timer, due), 0);
	}
	run_until_count(loop, &nlog, N);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(log[i], i);
}

static void test_timer_cancel(void **state)
{
	struct loop *loop = *state;
	enum { N = 10 };
	struct owner o[N];
	unsigned log[N], nlog = 0;
	for (unsigned i = 0; i < N; i++) {
		owner_init(&o[i], loop, i, log, &nlog);
		assert_int_equal(loop_timer_start(loop, &o[i].timer, i), 0);
	}
	/* The earliest (heap root), one in the middle, the last. */
	loop_timer_cancel(&o[0].timer);
	loop_timer_cancel(&o[5].timer);
	loop_timer_cancel(&o[9].timer);
	loop_timer_cancel(&o[9].timer); /* twice: no-op */
	assert_false(loop_timer_is_armed(&o[0].timer));
	assert_int_equal(loop_timer_remaining(&o[0].timer), UINT64_MAX);
	assert_int_equal(loop_timer_count(loop), N - 3);

	run_until_count(loop, &nlog, N - 3);
	unsigned expect[] = {1, 2, 3, 4, 6, 7, 8};
	for (unsigned k = 0; k < N - 3; k++)
		assert_int_equal(log[k], expect[k]);
	assert_int_equal(o[0].fired + o[5].fired + o[9].fired, 0);

	/* Cancel after fire and cancel of a never-started timer: no-ops. */
	loop_timer_cancel(&o[1].timer);
	struct loop_timer idle;
	loop_timer_init(&idle, owner_fire_cb, NULL);
	loop_timer_cancel(&idle);
	assert_int_equal(loop_timer_count(loop), 0);
	/* A zeroed (calloc'ed) timer is idle; it cannot be started without a
	 * callback. */
	struct loop_timer zeroed = {0};
	loop_timer_cancel(&zeroed);
	assert_int_equal(loop_timer_start(loop, &zeroed, 0), -EINVAL);
	assert_false(loop_timer_is_armed(&zeroed));
	for (int i = 0; i < 3; i++)
		assert_int_equal(loop_run_once(loop, 0), 0);
}

static void test_timer_rearm_from_callback(void **state)
{
	struct loop *loop = *state;
	struct owner o;
	unsigned log[8], nlog = 0;
	owner_init(&o, loop, 1, log, &nlog);
	o.rearm = 4;
	o.rearm_delay = 3;
	uint64_t start = loop_now_ms(loop);
	assert_int_equal(loop_timer_start(loop, &o.timer, 3), 0);
	run_until_count(loop, &nlog, 5);
	assert_false(loop_timer_is_armed(&o.timer));
	assert_true(o.fired_at - start >= 15);
}

static void test_timer_rearm_zero_no_spin(void **state)
{
	struct loop *loop = *state;
	struct owner o;
	owner_init(&o, loop, 1, NULL, NULL);
	o.rearm = 1000;
	o.rearm_delay = 0;
	assert_int_equal(loop_timer_start(loop, &o.timer, 0), 0);
	/* A timer re-armed for "now" from its callback fires once per
	 * iteration, never in a tight loop inside one. */
	for (unsigned i = 1; i <= 5; i++) {
		assert_int_equal(loop_run_once(loop, 0), 1);
		assert_int_equal(o.fired, i);
		assert_true(loop_timer_is_armed(&o.timer));
	}
	loop_timer_cancel(&o.timer);
	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_int_equal(o.fired, 5);
}

static void test_timer_cancels_other_same_iteration(void **state)
{
	struct loop *loop = *state;
	struct owner a, b, c;
	unsigned log[8], nlog = 0;
	owner_init(&a, loop, 1, log, &nlog);
	owner_init(&b, loop, 2, log, &nlog);
	owner_init(&c, loop, 3, log, &nlog);
	a.victim = &b;
	uint64_t due = loop_now_ms(loop) + 2;
	assert_int_equal(loop_timer_start_at(loop, &a.timer, due), 0);
	assert_int_equal(loop_timer_start_at(loop, &b.timer, due), 0);
	assert_int_equal(loop_timer_start_at(loop, &c.timer, due), 0);
	/* Wait until all three are due, then one iteration fires them. */
	while (loop_update_time(loop) < due + 1)
		usleep(500);
	assert_int_equal(loop_run_once(loop, 0), 2);
	assert_int_equal(nlog, 2);
	assert_int_equal(log[0], 1);
	assert_int_equal(log[1], 3);
	assert_int_equal(b.fired, 0);
	assert_false(loop_timer_is_armed(&b.timer));

	/* Variant: the victim is cancelled and re-armed for "now": it does not
	 * fire in that iteration, but in the next. */
	nlog = 0;
	a.fired = b.fired = 0;
	a.victim_restart = true;
	due = loop_update_time(loop);
	assert_int_equal(loop_timer_start_at(loop, &a.timer, due), 0);
	assert_int_equal(loop_timer_start_at(loop, &b.timer, due), 0);
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 0);
	assert_true(loop_timer_is_armed(&b.timer));
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(b.fired, 1);
}

static void test_timer_reschedule_armed(void **state)
{
	struct loop *loop = *state;
	struct owner o;
	owner_init(&o, loop, 1, NULL, NULL);
	/* Later to sooner. */
	assert_int_equal(loop_timer_start(loop, &o.timer, 100000), 0);
	assert_true(loop_timer_remaining(&o.timer) > 1000);
	assert_int_equal(loop_timer_start(loop, &o.timer, 0), 0);
	assert_int_equal(loop_timer_count(loop), 1);
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(o.fired, 1);
	/* Sooner to later. */
	assert_int_equal(loop_timer_start(loop, &o.timer, 0), 0);
	assert_int_equal(loop_timer_start(loop, &o.timer, 100000), 0);
	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_int_equal(o.fired, 1);
	/* A time in the past fires at once. */
	assert_int_equal(loop_timer_start_at(loop, &o.timer, 0), 0);
	assert_int_equal(loop_timer_remaining(&o.timer), 0);
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(o.fired, 2);
	/* A delay that would overflow saturates. */
	assert_int_equal(loop_timer_start(loop, &o.timer, UINT64_MAX), 0);
	assert_int_equal(o.timer.due_ms, UINT64_MAX);
	loop_timer_cancel(&o.timer);
}

static void test_timer_drives_epoll_timeout(void **state)
{
	struct loop *loop = *state;
	struct owner o, far;
	owner_init(&o, loop, 1, NULL, NULL);
	owner_init(&far, loop, 2, NULL, NULL);
	assert_int_equal(loop_timer_start(loop, &far.timer, 60000), 0);
	uint64_t t0 = clock_ms();
	assert_int_equal(loop_timer_start(loop, &o.timer, 30), 0);
	/* No fds, no bound: only the earliest timer can end the wait. */
	for (int i = 0; i < 5 && o.fired == 0; i++)
		assert_true(loop_run_once(loop, -1) >= 0);
	uint64_t elapsed = clock_ms() - t0;
	assert_int_equal(o.fired, 1);
	assert_int_equal(far.fired, 0);
	assert_true(elapsed >= 30);
	assert_true(elapsed < 5000);
	loop_timer_cancel(&far.timer);
}

static void test_timer_many(void **state)
{
	struct loop *loop = *state;
	enum { N = 100000 };
	struct owner *o = calloc(N, sizeof(*o));
	unsigned *log = calloc(N, sizeof(*log));
	assert_non_null(o);
	assert_non_null(log);
	unsigned nlog = 0;
	uint64_t t0 = clock_ms();
	for (unsigned i = 0; i < N; i++) {
		owner_init(&o[i], loop, i, log, &nlog);
		assert_int_equal(loop_timer_start(loop, &o[i].timer, rng_next() % 50), 0);
	}
	unsigned armed = N;
	for (unsigned i = 0; i < N; i += 3) {
		loop_timer_cancel(&o[i].timer);
		armed--;
	}
	for (unsigned i = 1; i < N; i += 5) {
		/* restart, some cancelled ones included */
		if (!loop_timer_is_armed(&o[i].timer))
			armed++;
		assert_int_equal(loop_timer_start(loop, &o[i].timer, rng_next() % 50), 0);
	}
	assert_int_equal(loop_timer_count(loop), armed);
	for (unsigned i = 0; i < N; i++)
		if (loop_timer_is_armed(&o[i].timer))
			o[i].due = o[i].timer.due_ms;
	run_until_count(loop, &nlog, armed);
	for (unsigned k = 1; k < nlog; k++)
		assert_true(o[log[k - 1]].due <= o[log[k]].due);
	for (unsigned i = 0; i < N; i++)
		assert_true(o[i].fired <= 1);
	/* O(log n) operations: 100k timers take well under a second even
	 * under sanitizers; mostly this waits for the 50 ms of delays. */
	assert_true(clock_ms() - t0 < 10000);
	free(o);
	free(log);
}

/* The heap property and the slot back-pointers, checked directly. */
static void check_heap(struct loop *loop)
{
	const struct loop_timers *h = loop_timers_of(loop);
	for (size_t i = 0; i < h->len; i++) {
		const struct loop_timer_slot *e = &h->v[i];
		assert_int_equal(e->t->slot, i);
		assert_ptr_equal(e->t->loop, loop);
		assert_int_equal(e->due_ms, e->t->due_ms);
		assert_int_equal(e->seq, e->t->seq);
		if (i > 0) {
			const struct loop_timer_slot *p = &h->v[(i - 1) / 2];
			assert_true(p->due_ms < e->due_ms ||
				    (p->due_ms == e->due_ms && p->seq < e->seq));
		}
	}
}

static void test_timer_heap_random_ops(void **state)
{
	struct loop *loop = *state;
	enum { N = 2000, OPS = 50000 };
	struct owner *o = calloc(N, sizeof(*o));
	assert_non_null(o);
	for (unsigned i = 0; i < N; i++)
		owner_init(&o[i], loop, i, NULL, NULL);
	size_t armed = 0;
	for (unsigned k = 0; k < OPS; k++) {
		struct owner *x = &o[rng_next() % N];
		if (rng_next() % 3 == 0) {
			if (loop_timer_is_armed(&x->timer))
				armed--;
			loop_timer_cancel(&x->timer);
		} else {
			if (!loop_timer_is_armed(&x->timer))
				armed++;
			/* few distinct due times: many ties */
			assert_int_equal(loop_timer_start(loop, &x->timer, 1000 + rng_next() % 64),
					 0);
		}
		if (k % 997 == 0)
			check_heap(loop);
	}
	check_heap(loop);
	assert_int_equal(loop_timer_count(loop), armed);
	for (unsigned i = 0; i < N; i++)
		loop_timer_cancel(&o[i].timer);
	assert_int_equal(loop_timer_count(loop), 0);
	free(o);
}

/* Owner that frees itself through the deferred path from its own timer. */
struct self_freeing {
	struct loop_timer timer;
	struct loop *loop;
	unsigned *freed;
	unsigned touched;
};

static void self_freeing_free_cb(void *arg)
{
	struct self_freeing *s = arg;
	(*s->freed)++;
	free(s);
}

static void self_freeing_timer_cb(void *arg)
{
	struct self_freeing *s = arg;
	assert_int_equal(loop_defer(s->loop, self_freeing_free_cb, s), 0);
	s->touched++; /* still valid: the free runs after this callback */
	assert_int_equal(*s->freed, 0);
}

static void test_timer_free_owner_deferred(void **state)
{
	struct loop *loop = *state;
	unsigned freed = 0;
	for (int i = 0; i < 50; i++) {
		struct self_freeing *s = calloc(1, sizeof(*s));
		assert_non_null(s);
		s->loop = loop;
		s->freed = &freed;
		loop_timer_init(&s->timer, self_freeing_timer_cb, s);
		assert_int_equal(loop_timer_start(loop, &s->timer, 0), 0);
	}
	assert_int_equal(loop_run_once(loop, 0), 50);
	assert_int_equal(freed, 50);
}

static void test_timer_alloc_failure(void **state)
{
	struct loop *loop = *state;
	enum { N = 65 };
	struct owner o[N];
	/* Fill the heap to its first capacity (64 timers) first. */
	for (unsigned i = 0; i < N; i++)
		owner_init(&o[i], loop, i, NULL, NULL);
	for (unsigned i = 0; i < N - 1; i++)
		assert_int_equal(loop_timer_start(loop, &o[i].timer, 1000 + i), 0);
	loop_mem_fail_after(0);
	assert_int_equal(loop_timer_start(loop, &o[N - 1].timer, 1), -ENOMEM);
	assert_false(loop_timer_is_armed(&o[N - 1].timer));
	/* Moving an armed timer needs no memory. */
	assert_int_equal(loop_timer_start(loop, &o[3].timer, 0), 0);
	loop_mem_fail_after(-1);
	assert_int_equal(loop_timer_count(loop), N - 1);
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(o[3].fired, 1);
	assert_int_equal(loop_timer_start(loop, &o[N - 1].timer, 0), 0);
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(o[N - 1].fired, 1);
	for (unsigned i = 0; i < N; i++)
		loop_timer_cancel(&o[i].timer);
	assert_int_equal(loop_timer_count(loop), 0);
}

static void test_timer_loop_destroy_detaches(void **state)
{
	(void)state;
	struct loop *loop;
	assert_int_equal(loop_create(&loop), 0);
	struct owner o[3];
	for (unsigned i = 0; i < 3; i++) {
		owner_init(&o[i], loop, i, NULL, NULL);
		assert_int_equal(loop_timer_start(loop, &o[i].timer, 1000), 0);
	}
	loop_destroy(loop);
	for (unsigned i = 0; i < 3; i++) {
		assert_false(loop_timer_is_armed(&o[i].timer));
		loop_timer_cancel(&o[i].timer); /* safe no-op */
		assert_int_equal(o[i].fired, 0);
	}
}

static void test_timer_move_between_loops(void **state)
{
	struct loop *a = *state, *b;
	assert_int_equal(loop_create(&b), 0);
	struct owner o;
	owner_init(&o, a, 1, NULL, NULL);
	assert_int_equal(loop_timer_start(a, &o.timer, 0), 0);
	o.loop = b;
	assert_int_equal(loop_timer_start(b, &o.timer, 0), 0);
	assert_int_equal(loop_timer_count(a), 0);
	assert_int_equal(loop_timer_count(b), 1);
	assert_int_equal(loop_run_once(a, 0), 0);
	assert_int_equal(loop_run_once(b, 0), 1);
	assert_int_equal(o.fired, 1);
	loop_destroy(b);
}

struct now_probe {
	struct loop *loop;
	uint64_t first, second, updated;
};

static void now_probe_cb(void *arg)
{
	struct now_probe *p = arg;
	p->first = loop_now_ms(p->loop);
	usleep(3000);
	p->second = loop_now_ms(p->loop);
	p->updated = loop_update_time(p->loop);
}

static void test_loop_now_cached(void **state)
{
	struct loop *loop = *state;
	struct now_probe p = {.loop = loop};
	struct loop_timer t;
	loop_timer_init(&t, now_probe_cb, &p);
	assert_int_equal(loop_timer_start(loop, &t, 0), 0);
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(p.first, p.second); /* cached for the iteration */
	assert_true(p.updated >= p.first + 3);
	assert_true(loop_now_ms(loop) >= p.updated); /* never backwards */
}

int main(void)
{
	alarm(120); /* hard bound for the whole file */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_timer_random_order, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_timer_equal_due_fifo, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_timer_cancel, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_timer_rearm_from_callback, setup_loop,
					    teardown_loop),
	    cmocka_unit_test_setup_teardown(test_timer_rearm_zero_no_spin, setup_loop,
					    teardown_loop),
	    cmocka_unit_test_setup_teardown(test_timer_cancels_other_same_iteration, setup_loop,
					    teardown_loop),
	    cmocka_unit_test_setup_teardown(test_timer_reschedule_armed, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_timer_drives_epoll_timeout, setup_loop,
					    teardown_loop),
	    cmocka_unit_test_setup_teardown(test_timer_many, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_timer_heap_random_ops, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_timer_free_owner_deferred, setup_loop,
					    teardown_loop),
	    cmocka_unit_test_setup_teardown(test_timer_alloc_failure, setup_loop, teardown_loop),
	    cmocka_unit_test(test_timer_loop_destroy_detaches),
	    cmocka_unit_test_setup_teardown(test_timer_move_between_loops, setup_loop,
					    teardown_loop),
	    cmocka_unit_test_setup_teardown(test_loop_now_cached, setup_loop, teardown_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
