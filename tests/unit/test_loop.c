/* test_loop.c: fd readiness, run/stop, deferred free, posts across threads, workers and pools. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop/loop.h"
#include "loop/timer.h"
#include "loop/worker.h"

/* Waits are bounded: a few seconds per condition, alarm() for the file. */
#define WAIT_MS 20000

static uint64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Poll an atomic counter from a thread that runs no loop. */
static bool wait_atomic(atomic_uint *v, unsigned want)
{
	uint64_t end = clock_ms() + WAIT_MS;
	while (atomic_load(v) < want) {
		if (clock_ms() > end)
			return false;
		usleep(1000);
	}
	return true;
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

static void make_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* ---- fds ---- */

struct io_rec {
	struct loop *loop;
	unsigned calls;
	uint32_t events;
	int fd;
	char order[32]; /* what ran, in order: 'c' callback, 'd' deferred */
	unsigned norder;
	int remove_fd; /* when >= 0: remove (and maybe replace) this fd */
	bool replace;  /* close remove_fd and dup2 a quiet fd onto its number */
	int quiet_fd;
	struct io_rec *replacement;
	bool defer_in_cb; /* queue rec_defer_cb from the callback */
};

static void rec_defer_cb(void *arg)
{
	struct io_rec *r = arg;
	r->order[r->norder++] = 'd';
}

static void io_second_cb(int fd, uint32_t events, void *arg)
{
	struct io_rec *r = arg;
	r->calls++;
}

static void io_cb(int fd, uint32_t events, void *arg)
{
	struct io_rec *r = arg;
	r->calls++;
	r->events = events;
	r->fd = fd;
	r->order[r->norder++] = 'c';
	if (r->defer_in_cb)
		assert_int_equal(loop_defer(r->loop, rec_defer_cb, r), 0);
	if (r->remove_fd >= 0) {
		assert_int_equal(loop_fd_remove(r->loop, r->remove_fd), 0);
		if (r->replace) {
			close(r->remove_fd);
			assert_int_equal(dup2(r->quiet_fd, r->remove_fd), r->remove_fd);
			assert_int_equal(loop_fd_add(r->loop, r->remove_fd, LOOP_READ, io_second_cb,
						     r->replacement),
					 0);
		}
		r->remove_fd = -1;
	}
}

static void rec_init(struct io_rec *r, struct loop *loop)
{
	memset(r, 0, sizeof(*r));
	r->loop = loop;
	r->remove_fd = -1;
	r->quiet_fd = -1;
}

static void test_fd_read_ready(void **state)
{
	struct loop *loop = *state;
	int sv[2];
	make_pair(sv);
	struct io_rec r;
	rec_init(&r, loop);
	assert_int_equal(loop_fd_add(loop, sv[0], LOOP_READ, io_cb, &r), 0);
	assert_int_equal(loop_fd_count(loop), 1);

	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_int_equal(r.calls, 0);

	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(loop_run_once(loop, 1000), 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.fd, sv[0]);
	assert_true(r.events & LOOP_READ);
	assert_false(r.events & LOOP_WRITE);

	/* Level-triggered: reported again until read. */
	assert_int_equal(loop_run_once(loop, 0), 1);
	char c;
	assert_int_equal(read(sv[0], &c, 1), 1);
	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_int_equal(r.calls, 2);

	assert_int_equal(loop_fd_remove(loop, sv[0]), 0);
	assert_int_equal(loop_fd_count(loop), 0);
	assert_int_equal(write(sv[1], "y", 1), 1);
	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_int_equal(r.calls, 2);
	close(sv[0]);
	close(sv[1]);
}

static void test_fd_write_and_modify(void **state)
{
	struct loop *loop = *state;
	int sv[2];
	make_pair(sv);
	struct io_rec r;
	rec_init(&r, loop);
	assert_int_equal(loop_fd_add(loop, sv[0], LOOP_WRITE, io_cb, &r), 0);
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(r.events, LOOP_WRITE);

	assert_int_equal(loop_fd_modify(loop, sv[0], LOOP_READ), 0);
	assert_int_equal(loop_run_once(loop, 0), 0);

	assert_int_equal(loop_fd_modify(loop, sv[0], 0), 0); /* paused */
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(loop_run_once(loop, 0), 0);

	assert_int_equal(loop_fd_modify(loop, sv[0], LOOP_READ | LOOP_WRITE), 0);
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(r.events, LOOP_READ | LOOP_WRITE);

	assert_int_equal(loop_fd_remove(loop, sv[0]), 0);
	close(sv[0]);
	close(sv[1]);
}

static void test_fd_hup(void **state)
{
	struct loop *loop = *state;
	int sv[2];
	make_pair(sv);
	struct io_rec r;
	rec_init(&r, loop);
	assert_int_equal(loop_fd_add(loop, sv[0], LOOP_READ, io_cb, &r), 0);
	close(sv[1]);
	assert_int_equal(loop_run_once(loop, 1000), 1);
	assert_true(r.events & LOOP_HUP);
	assert_true(r.events & LOOP_READ); /* read() returns 0 now */

	/* Errors and hang-ups are reported even with no interest. */
	assert_int_equal(loop_fd_modify(loop, sv[0], 0), 0);
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(r.events, LOOP_HUP);
	assert_int_equal(loop_fd_remove(loop, sv[0]), 0);
	close(sv[0]);
}

static void test_fd_errors(void **state)
{
	struct loop *loop = *state;
	int sv[2];
	make_pair(sv);
	struct io_rec r;
	rec_init(&r, loop);
	assert_int_equal(loop_fd_add(loop, -1, LOOP_READ, io_cb, &r), -EINVAL);
	assert_int_equal(loop_fd_add(loop, sv[0], LOOP_READ, NULL, &r), -EINVAL);
	assert_int_equal(loop_fd_modify(loop, sv[0], LOOP_READ), -ENOENT);
	assert_int_equal(loop_fd_remove(loop, sv[0]), -ENOENT);
	assert_int_equal(loop_fd_modify(loop, 100000, LOOP_READ), -ENOENT);

	assert_int_equal(loop_fd_add(loop, sv[0], LOOP_READ, io_cb, &r), 0);
	assert_int_equal(loop_fd_add(loop, sv[0], LOOP_WRITE, io_cb, &r), -EEXIST);

	/* epoll refuses regular files, and closed fds. */
	char path[] = "/tmp/sipsd-test-loop-XXXXXX";
	int file = mkstemp(path);
	assert_true(file >= 0);
	unlink(path);
	assert_int_equal(loop_fd_add(loop, file, LOOP_READ, io_cb, &r), -EPERM);
	close(file);
	assert_int_equal(loop_fd_add(loop, file, LOOP_READ, io_cb, &r), -EBADF);
	assert_int_equal(loop_fd_count(loop), 1);

	/* A failed add leaves nothing behind: the fd can be added after. */
	assert_int_equal(loop_fd_add(loop, sv[1], LOOP_READ, io_cb, &r), 0);
	assert_int_equal(loop_fd_count(loop), 2);

	/* Closed before removal: the entry is forgotten anyway. */
	close(sv[1]);
	assert_int_equal(loop_fd_remove(loop, sv[1]), -EBADF);
	assert_int_equal(loop_fd_count(loop), 1);
	assert_int_equal(loop_fd_remove(loop, sv[0]), 0);
	close(sv[0]);
}

static void test_fd_alloc_failure(void **state)
{
	struct loop *loop = *state;
	int sv[2];
	make_pair(sv);
	/* A high fd number needs the table to grow. */
	int high = fcntl(sv[0], F_DUPFD_CLOEXEC, 700);
	assert_true(high >= 700);
	struct io_rec r;
	rec_init(&r, loop);
	loop_mem_fail_after(0);
	assert_int_equal(loop_fd_add(loop, high, LOOP_READ, io_cb, &r), -ENOMEM);
	loop_mem_fail_after(-1);
	assert_int_equal(loop_fd_count(loop), 0);
	assert_int_equal(loop_fd_add(loop, high, LOOP_READ, io_cb, &r), 0);
	assert_int_equal(loop_fd_remove(loop, high), 0);
	close(high);
	close(sv[0]);
	close(sv[1]);
}

/* Two fds ready in one iteration; the first callback removes the other. */
static void test_fd_remove_other_same_iteration(void **state)
{
	struct loop *loop = *state;
	int a[2], b[2];
	make_pair(a);
	make_pair(b);
	struct io_rec ra, rb;
	rec_init(&ra, loop);
	rec_init(&rb, loop);
	ra.remove_fd = b[0];
	rb.remove_fd = a[0];
	assert_int_equal(loop_fd_add(loop, a[0], LOOP_READ, io_cb, &ra), 0);
	assert_int_equal(loop_fd_add(loop, b[0], LOOP_READ, io_cb, &rb), 0);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "x", 1), 1);
	/* Whichever runs first removes the other: only one callback. */
	assert_int_equal(loop_run_once(loop, 1000), 1);
	assert_int_equal(ra.calls + rb.calls, 1);
	assert_int_equal(loop_fd_count(loop), 1);
	assert_int_equal(loop_fd_remove(loop, ra.calls ? a[0] : b[0]), 0);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

/* The first callback removes the other fd, closes it, and registers a new
 * file under the same number: the stale event must not reach the new
 * registration. */
static void test_fd_stale_event_reused_number(void **state)
{
	struct loop *loop = *state;
	int a[2], b[2], q[2];
	make_pair(a);
	make_pair(b);
	make_pair(q); /* q[0] is never readable */
	struct io_rec ra, rb, rnew;
	rec_init(&ra, loop);
	rec_init(&rb, loop);
	rec_init(&rnew, loop);
	ra.remove_fd = b[0];
	ra.replace = true;
	ra.quiet_fd = q[0];
	ra.replacement = &rnew;
	rb.remove_fd = a[0];
	rb.replace = true;
	rb.quiet_fd = q[0];
	rb.replacement = &rnew;
	assert_int_equal(loop_fd_add(loop, a[0], LOOP_READ, io_cb, &ra), 0);
	assert_int_equal(loop_fd_add(loop, b[0], LOOP_READ, io_cb, &rb), 0);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "x", 1), 1);
	assert_int_equal(loop_run_once(loop, 1000), 1);
	assert_int_equal(ra.calls + rb.calls, 1);
	assert_int_equal(rnew.calls, 0);
	assert_int_equal(loop_run_once(loop, 0), 1); /* the survivor is still readable */
	assert_int_equal(rnew.calls, 0);
	int survivor = ra.calls ? a[0] : b[0];
	int reused = ra.calls ? b[0] : a[0];
	assert_int_equal(loop_fd_remove(loop, survivor), 0);
	assert_int_equal(loop_fd_remove(loop, reused), 0);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	close(q[0]);
	close(q[1]);
}

/* ---- run / stop ---- */

static void stop_cb(int fd, uint32_t events, void *arg)
{
	struct io_rec *r = arg;
	r->calls++;
	assert_int_equal(loop_run(r->loop), -EBUSY);
	assert_int_equal(loop_run_once(r->loop, 0), -EBUSY);
	loop_stop(r->loop);
}

static void test_run_stop(void **state)
{
	struct loop *loop = *state;
	int sv[2];
	make_pair(sv);
	struct io_rec r;
	rec_init(&r, loop);
	assert_int_equal(loop_fd_add(loop, sv[0], LOOP_WRITE, stop_cb, &r), 0);
	assert_int_equal(loop_run(loop), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(loop_fd_remove(loop, sv[0]), 0);

	/* A stop requested before the run is not lost. */
	loop_stop(loop);
	uint64_t t0 = clock_ms();
	assert_int_equal(loop_run(loop), 0);
	assert_true(clock_ms() - t0 < 1000);

	/* ... even when its wake-up was consumed by loop_run_once. */
	loop_stop(loop);
	assert_true(loop_run_once(loop, 0) >= 0);
	assert_int_equal(loop_run(loop), 0);
	close(sv[0]);
	close(sv[1]);
}

struct stopper {
	struct loop *loop;
	unsigned delay_ms;
};

static void *stopper_main(void *arg)
{
	struct stopper *s = arg;
	usleep(s->delay_ms * 1000);
	loop_stop(s->loop);
	return NULL;
}

static void test_stop_from_other_thread(void **state)
{
	struct loop *loop = *state;
	struct stopper s = {loop, 20};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, stopper_main, &s), 0);
	uint64_t t0 = clock_ms();
	assert_int_equal(loop_run(loop), 0); /* nothing registered: only the stop wakes it */
	assert_true(clock_ms() - t0 < 5000);
	pthread_join(th, NULL);
}

/* ---- deferred work ---- */

static void timer_log_cb(void *arg)
{
	struct io_rec *r = arg;
	r->order[r->norder++] = 't';
	assert_int_equal(loop_defer(r->loop, rec_defer_cb, r), 0);
}

static void test_defer_after_callbacks(void **state)
{
	struct loop *loop = *state;
	int a[2], b[2];
	make_pair(a);
	make_pair(b);
	struct io_rec r;
	rec_init(&r, loop);
	r.defer_in_cb = true;
	assert_int_equal(loop_fd_add(loop, a[0], LOOP_WRITE, io_cb, &r), 0);
	assert_int_equal(loop_fd_add(loop, b[0], LOOP_WRITE, io_cb, &r), 0);
	struct loop_timer t;
	loop_timer_init(&t, timer_log_cb, &r);
	assert_int_equal(loop_timer_start(loop, &t, 0), 0);

	/* fd callbacks, then the timer, each deferring: every deferred call
	 * runs after all of them. */
	assert_int_equal(loop_run_once(loop, 0), 3);
	assert_int_equal(r.norder, 6);
	assert_memory_equal(r.order, "cctddd", 6);

	/* Deferred outside an iteration: runs at the end of the next one. */
	r.norder = 0;
	r.defer_in_cb = false;
	assert_int_equal(loop_defer(loop, rec_defer_cb, &r), 0);
	assert_int_equal(loop_run_once(loop, 0), 2);
	assert_int_equal(r.norder, 3);
	assert_memory_equal(r.order, "ccd", 3);
	assert_int_equal(loop_fd_remove(loop, a[0]), 0);
	assert_int_equal(loop_fd_remove(loop, b[0]), 0);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

/* A connection-like object that destroys itself from its own callback. */
struct conn {
	struct loop *loop;
	int fd;
	unsigned *freed;
	unsigned *log; /* 1 = callback, 2 = free */
	unsigned *nlog;
	unsigned reads;
};

static void conn_free_cb(void *arg)
{
	struct conn *c = arg;
	c->log[(*c->nlog)++] = 2;
	(*c->freed)++;
	free(c);
}

static void conn_io_cb(int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;
	c->log[(*c->nlog)++] = 1;
	assert_int_equal(loop_fd_remove(c->loop, fd), 0);
	assert_int_equal(loop_defer(c->loop, conn_free_cb, c), 0);
	/* After deferring, the object is still ours until we return: ASan
	 * would flag this if the free ran inside the callback. */
	c->reads++;
	assert_int_equal(*c->freed, 0);
}

static void test_defer_free_in_own_callback(void **state)
{
	struct loop *loop = *state;
	enum { N = 8 };
	int sv[N][2];
	unsigned freed = 0, log[2 * N], nlog = 0;
	for (int i = 0; i < N; i++) {
		make_pair(sv[i]);
		struct conn *c = calloc(1, sizeof(*c));
		assert_non_null(c);
		*c = (struct conn){loop, sv[i][0], &freed, log, &nlog, 0};
		assert_int_equal(loop_fd_add(loop, sv[i][0], LOOP_WRITE, conn_io_cb, c), 0);
	}
	assert_int_equal(loop_run_once(loop, 0), N);
	assert_int_equal(freed, N);
	/* Every callback of the iteration ran before the first free. */
	for (int i = 0; i < N; i++) {
		assert_int_equal(log[i], 1);
		assert_int_equal(log[N + i], 2);
	}
	assert_int_equal(loop_fd_count(loop), 0);
	for (int i = 0; i < N; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
}

struct chain {
	struct loop *loop;
	unsigned left;
	unsigned ran;
};

static void chain_cb(void *arg)
{
	struct chain *c = arg;
	c->ran++;
	if (c->left > 0) {
		c->left--;
		assert_int_equal(loop_defer(c->loop, chain_cb, c), 0);
	}
}

static void test_defer_chain_and_no_block(void **state)
{
	struct loop *loop = *state;
	struct chain c = {loop, 200, 0};
	/* Pending deferred work: run_once(-1) must not wait. A deferred call
	 * that defers more runs in the same drain (array grows past 64). */
	assert_int_equal(loop_defer(loop, chain_cb, &c), 0);
	uint64_t t0 = clock_ms();
	assert_int_equal(loop_run_once(loop, -1), 0);
	assert_true(clock_ms() - t0 < 1000);
	assert_int_equal(c.ran, 201);
	assert_int_equal(loop_defer(loop, NULL, &c), -EINVAL);
}

struct node_obj {
	struct loop_deferred d;
	unsigned *freed;
};

static void node_free_cb(void *arg)
{
	struct node_obj *o = arg;
	(*o->freed)++;
	free(o); /* frees the node that queued this call: allowed */
}

static void count_cb(void *arg)
{
	(*(unsigned *)arg)++;
}

static void test_defer_node(void **state)
{
	struct loop *loop = *state;
	unsigned freed = 0, runs = 0;
	struct node_obj *o = calloc(1, sizeof(*o));
	assert_non_null(o);
	o->freed = &freed;
	assert_int_equal(loop_defer_node(loop, &o->d, node_free_cb, o), 0);
	assert_int_equal(loop_defer_node(loop, &o->d, node_free_cb, o), -EALREADY);

	struct loop_deferred d = {0};
	assert_int_equal(loop_defer_node(loop, &d, count_cb, &runs), 0);
	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_int_equal(freed, 1);
	assert_int_equal(runs, 1);
	/* Reusable once it ran. */
	assert_int_equal(loop_defer_node(loop, &d, count_cb, &runs), 0);
	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_int_equal(runs, 2);
}

static void test_defer_alloc_failure(void **state)
{
	struct loop *loop = *state;
	unsigned runs = 0;
	/* 64 deferrals fit in what loop_create reserved: no allocation. */
	loop_mem_fail_after(0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(loop_defer(loop, count_cb, &runs), 0);
	assert_int_equal(loop_defer(loop, count_cb, &runs), -ENOMEM);
	/* The embedded form cannot fail. */
	struct loop_deferred d = {0};
	assert_int_equal(loop_defer_node(loop, &d, count_cb, &runs), 0);
	loop_mem_fail_after(-1);
	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_int_equal(runs, 65);
}

static void free_cb(void *arg)
{
	free(arg);
}

static void test_destroy_runs_pending(void **state)
{
	(void)state;
	struct loop *loop;
	assert_int_equal(loop_create(&loop), 0);
	/* Owned arguments left queued are released by loop_destroy (ASan's
	 * leak check fails the test otherwise). */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(loop_defer(loop, free_cb, malloc(16)), 0);
		assert_int_equal(loop_post(loop, free_cb, malloc(16)), 0);
	}
	struct loop_deferred d = {0};
	assert_int_equal(loop_defer_node(loop, &d, free_cb, malloc(16)), 0);
	loop_destroy(loop);
}

static void test_create_alloc_failure(void **state)
{
	(void)state;
	struct loop *loop = (struct loop *)&loop;
	for (long n = 0; n < 3; n++) {
		loop_mem_fail_after(n);
		assert_int_equal(loop_create(&loop), -ENOMEM);
		assert_null(loop);
	}
	loop_mem_fail_after(-1);
	struct worker *w = (struct worker *)&w;
	loop_mem_fail_after(1); /* the worker, not its loop */
	assert_int_equal(worker_create(&w, 0), -ENOMEM);
	assert_null(w);
	struct worker_pool *p = NULL;
	loop_mem_fail_after(8); /* pool + a few workers, then fail midway */
	assert_int_equal(worker_pool_create(&p, 4), -ENOMEM);
	assert_null(p);
	loop_mem_fail_after(-1);
}

/* ---- posts ---- */

struct seq_rec {
	unsigned next;
	bool in_order;
};

struct seq_item {
	struct seq_rec *rec;
	unsigned n;
};

static void seq_cb(void *arg)
{
	struct seq_item *it = arg;
	if (it->n != it->rec->next)
		it->rec->in_order = false;
	it->rec->next++;
}

static void test_post_same_thread(void **state)
{
	struct loop *loop = *state;
	enum { N = 100 };
	struct seq_rec rec = {0, true};
	struct seq_item items[N];
	for (unsigned i = 0; i < N; i++) {
		items[i] = (struct seq_item){&rec, i};
		assert_int_equal(loop_post(loop, seq_cb, &items[i]), 0);
	}
	assert_int_equal(loop_post_pending(loop), N);
	assert_int_equal(loop_run_once(loop, 1000), N);
	assert_int_equal(rec.next, N);
	assert_true(rec.in_order);
	assert_int_equal(loop_post_pending(loop), 0);
	assert_int_equal(loop_post(loop, NULL, NULL), -EINVAL);
}

static void test_post_limit_and_failure(void **state)
{
	struct loop *loop = *state;
	unsigned runs = 0;
	/* 64 posts fit in what loop_create reserved. */
	loop_mem_fail_after(0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(loop_post(loop, count_cb, &runs), 0);
	assert_int_equal(loop_post(loop, count_cb, &runs), -ENOMEM);
	loop_mem_fail_after(-1);
	for (unsigned i = 64; i < LOOP_POST_MAX; i++)
		assert_int_equal(loop_post(loop, count_cb, &runs), 0);
	assert_int_equal(loop_post(loop, count_cb, &runs), -EAGAIN);
	assert_int_equal(loop_run_once(loop, 0), LOOP_POST_MAX);
	assert_int_equal(runs, LOOP_POST_MAX);
	assert_int_equal(loop_post(loop, count_cb, &runs), 0);
	loop_post_close(loop);
	assert_int_equal(runs, LOOP_POST_MAX + 1);
	assert_int_equal(loop_post(loop, count_cb, &runs), -ESHUTDOWN);
}

/* 4 producer threads x 10,000 items into one worker. */
enum { PRODUCERS = 4, PER_PRODUCER = 10000 };

struct xpost {
	struct worker *w;
	unsigned char hits[PRODUCERS][PER_PRODUCER]; /* written on the worker thread only */
	unsigned last[PRODUCERS];		     /* last seq + 1 per producer */
	bool order_ok;
	bool thread_ok;
	atomic_uint done;
	atomic_uint retries;
};

struct xitem {
	struct xpost *x;
	unsigned producer;
	unsigned seq;
};

static struct xitem xitems[PRODUCERS][PER_PRODUCER];

static void xitem_cb(void *arg)
{
	struct xitem *it = arg;
	struct xpost *x = it->x;
	if (worker_self() != x->w)
		x->thread_ok = false;
	if (it->seq + 1 <= x->last[it->producer]) /* FIFO per producer */
		x->order_ok = false;
	x->last[it->producer] = it->seq + 1;
	if (x->hits[it->producer][it->seq] < 255)
		x->hits[it->producer][it->seq]++;
}

struct producer_arg {
	struct xpost *x;
	unsigned producer;
};

static void *producer_main(void *arg)
{
	struct producer_arg *pa = arg;
	for (unsigned i = 0; i < PER_PRODUCER; i++) {
		struct xitem *it = &xitems[pa->producer][i];
		it->x = pa->x;
		it->producer = pa->producer;
		it->seq = i;
		int rc;
		int tries = 0;
		while ((rc = worker_post(pa->x->w, xitem_cb, it)) == -EAGAIN && tries++ < 10000) {
			atomic_fetch_add(&pa->x->retries, 1);
			usleep(100);
		}
		if (rc != 0)
			return (void *)1;
	}
	return NULL;
}

static void done_cb(void *arg)
{
	atomic_fetch_add((atomic_uint *)arg, 1);
}

static void test_post_cross_thread(void **state)
{
	(void)state;
	struct xpost *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	x->order_ok = true;
	x->thread_ok = true;
	atomic_init(&x->done, 0);
	atomic_init(&x->retries, 0);
	assert_int_equal(worker_create(&x->w, 3), 0);
	assert_int_equal(worker_start(x->w), 0);

	pthread_t th[PRODUCERS];
	struct producer_arg pa[PRODUCERS];
	for (unsigned p = 0; p < PRODUCERS; p++) {
		pa[p] = (struct producer_arg){x, p};
		assert_int_equal(pthread_create(&th[p], NULL, producer_main, &pa[p]), 0);
	}
	for (unsigned p = 0; p < PRODUCERS; p++) {
		void *ret;
		pthread_join(th[p], &ret);
		assert_null(ret);
	}
	/* Posted after every producer finished: runs after all their items. */
	assert_int_equal(worker_post(x->w, done_cb, &x->done), 0);
	assert_true(wait_atomic(&x->done, 1));
	worker_stop(x->w);
	assert_int_equal(worker_join(x->w), 0);

	for (unsigned p = 0; p < PRODUCERS; p++)
		for (unsigned i = 0; i < PER_PRODUCER; i++)
			assert_int_equal(x->hits[p][i], 1);
	assert_true(x->order_ok);
	assert_true(x->thread_ok);
	assert_int_equal(worker_post(x->w, done_cb, &x->done), -ESHUTDOWN);
	worker_destroy(x->w);
	free(x);
}

/* ---- workers and pools ---- */

struct whoami {
	struct worker *seen;
	pthread_t thread;
	atomic_uint *count;
};

static void whoami_cb(void *arg)
{
	struct whoami *w = arg;
	w->seen = worker_self();
	w->thread = pthread_self();
	atomic_fetch_add(w->count, 1);
}

static void test_worker_lifecycle(void **state)
{
	(void)state;
	struct worker *w;
	atomic_uint count;
	atomic_init(&count, 0);
	assert_null(worker_self());
	assert_int_equal(worker_create(&w, 7), 0);
	assert_int_equal(worker_index(w), 7);
	assert_non_null(worker_loop(w));

	/* Posted before start: waits, then runs on the worker thread. */
	struct whoami who = {NULL, pthread_self(), &count};
	assert_int_equal(worker_post(w, whoami_cb, &who), 0);
	assert_int_equal(worker_join(w), 0); /* never started: no-op */
	assert_int_equal(worker_start(w), 0);
	assert_int_equal(worker_start(w), -EALREADY);
	assert_true(wait_atomic(&count, 1));
	worker_stop(w);
	assert_int_equal(worker_join(w), 0);
	assert_int_equal(worker_join(w), 0); /* twice: no-op */
	assert_ptr_equal(who.seen, w);
	assert_false(pthread_equal(who.thread, pthread_self()));
	assert_int_equal(worker_post(w, whoami_cb, &who), -ESHUTDOWN);
	worker_destroy(w);
	worker_destroy(NULL);
}

static void test_worker_stop_before_start(void **state)
{
	(void)state;
	struct worker *w;
	atomic_uint count;
	atomic_init(&count, 0);
	assert_int_equal(worker_create(&w, 0), 0);
	struct whoami who = {NULL, pthread_self(), &count};
	assert_int_equal(worker_post(w, whoami_cb, &who), 0);
	worker_stop(w);
	assert_int_equal(worker_start(w), 0);
	assert_int_equal(worker_join(w), 0); /* returns: the stop was kept */
	/* What was posted before the stop still ran, on the worker. */
	assert_int_equal(atomic_load(&count), 1);
	assert_ptr_equal(who.seen, w);
	worker_destroy(w);

	/* Destroyed without ever starting: queued work runs at destroy. */
	assert_int_equal(worker_create(&w, 0), 0);
	assert_int_equal(worker_post(w, free_cb, malloc(8)), 0);
	worker_destroy(w);
}

static void test_pool(void **state)
{
	(void)state;
	struct worker_pool *p;
	assert_int_equal(worker_pool_create(&p, WORKER_MAX + 1), -EINVAL);
	assert_int_equal(worker_pool_create(&p, 0), 0);
	unsigned n = worker_pool_size(p);
	assert_int_equal(n, worker_default_count());
	assert_true(n >= 1);
	assert_int_equal(worker_pool_start(p), 0);

	atomic_uint count;
	atomic_init(&count, 0);
	struct whoami *who = calloc(n, sizeof(*who));
	assert_non_null(who);
	for (unsigned i = 0; i < n; i++) {
		who[i].count = &count;
		assert_int_equal(worker_pool_post(p, i, whoami_cb, &who[i]), 0);
	}
	assert_int_equal(worker_pool_post(p, n, whoami_cb, &who[0]), -EINVAL);
	assert_null(worker_pool_get(p, n));
	assert_true(wait_atomic(&count, n));
	assert_int_equal(worker_pool_stop(p), 0);
	for (unsigned i = 0; i < n; i++) {
		assert_ptr_equal(who[i].seen, worker_pool_get(p, i));
		assert_int_equal(worker_index(who[i].seen), i);
		for (unsigned j = 0; j < i; j++)
			assert_false(pthread_equal(who[i].thread, who[j].thread));
	}
	worker_pool_destroy(p);
	worker_pool_destroy(NULL);
	free(who);
}

static void test_pool_repeated(void **state)
{
	(void)state;
	/* Start/stop/destroy many times; destroy without stop; destroy
	 * without start. ASan/LSan catch leaked threads' memory and fds. */
	for (int round = 0; round < 20; round++) {
		struct worker_pool *p;
		assert_int_equal(worker_pool_create(&p, 4), 0);
		if (round % 3 != 2)
			assert_int_equal(worker_pool_start(p), 0);
		for (unsigned i = 0; i < 4; i++)
			assert_int_equal(worker_pool_post(p, i, free_cb, malloc(32)), 0);
		if (round % 3 == 0)
			assert_int_equal(worker_pool_stop(p), 0);
		worker_pool_destroy(p);
	}
}

/* Worker A and worker B bounce a ball: each hop is a post to the other. */
struct ball {
	struct worker *w[2];
	unsigned hops;
	unsigned max;
	bool ok;
	atomic_uint done;
};

static void ball_cb(void *arg)
{
	struct ball *b = arg;
	struct worker *self = worker_self();
	if (self != b->w[b->hops % 2])
		b->ok = false;
	if (++b->hops == b->max) {
		atomic_store(&b->done, 1);
		return;
	}
	if (worker_post(b->w[b->hops % 2], ball_cb, b) != 0)
		b->ok = false;
}

static void test_worker_ping_pong(void **state)
{
	(void)state;
	struct worker_pool *p;
	assert_int_equal(worker_pool_create(&p, 2), 0);
	struct ball b = {{worker_pool_get(p, 0), worker_pool_get(p, 1)}, 0, 2000, true, 0};
	atomic_init(&b.done, 0);
	assert_int_equal(worker_pool_start(p), 0);
	assert_int_equal(worker_pool_post(p, 0, ball_cb, &b), 0);
	assert_true(wait_atomic(&b.done, 1));
	assert_int_equal(worker_pool_stop(p), 0);
	assert_int_equal(b.hops, 2000);
	assert_true(b.ok);
	worker_pool_destroy(p);
}

/* Two workers bounce a ball forever; the pool is stopped meanwhile. The
 * last post meets a closed inbox and keeps the ball (-ESHUTDOWN). */
struct rally {
	struct worker *w[2];
	unsigned hops; /* handed over through the inbox lock */
	atomic_uint progress;
	atomic_uint refused;
	atomic_uint other_error;
};

static void rally_cb(void *arg)
{
	struct rally *r = arg;
	r->hops++;
	atomic_store(&r->progress, r->hops);
	int rc = worker_post(r->w[r->hops % 2], rally_cb, r);
	if (rc == -ESHUTDOWN)
		atomic_fetch_add(&r->refused, 1);
	else if (rc != 0)
		atomic_fetch_add(&r->other_error, 1);
}

static void test_pool_stop_while_posting(void **state)
{
	(void)state;
	for (int round = 0; round < 10; round++) {
		struct worker_pool *p;
		assert_int_equal(worker_pool_create(&p, 2), 0);
		struct rally *r = calloc(1, sizeof(*r));
		assert_non_null(r);
		r->w[0] = worker_pool_get(p, 0);
		r->w[1] = worker_pool_get(p, 1);
		assert_int_equal(worker_pool_start(p), 0);
		assert_int_equal(worker_pool_post(p, 0, rally_cb, r), 0);
		assert_true(wait_atomic(&r->progress, 500));
		assert_int_equal(worker_pool_stop(p), 0);
		/* Each worker runs what was posted before its inbox closed, so
		 * the ball stops exactly once, refused by a closed inbox. */
		assert_int_equal(atomic_load(&r->refused), 1);
		assert_int_equal(atomic_load(&r->other_error), 0);
		worker_pool_destroy(p);
		free(r);
	}
}

int main(void)
{
	alarm(240); /* hard bound for the whole file */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fd_read_ready, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_fd_write_and_modify, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_fd_hup, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_fd_errors, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_fd_alloc_failure, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_fd_remove_other_same_iteration, setup_loop,
					    teardown_loop),
	    cmocka_unit_test_setup_teardown(test_fd_stale_event_reused_number, setup_loop,
					    teardown_loop),
	    cmocka_unit_test_setup_teardown(test_run_stop, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_stop_from_other_thread, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_defer_after_callbacks, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_defer_free_in_own_callback, setup_loop,
					    teardown_loop),
	    cmocka_unit_test_setup_teardown(test_defer_chain_and_no_block, setup_loop,
					    teardown_loop),
	    cmocka_unit_test_setup_teardown(test_defer_node, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_defer_alloc_failure, setup_loop, teardown_loop),
	    cmocka_unit_test(test_destroy_runs_pending),
	    cmocka_unit_test(test_create_alloc_failure),
	    cmocka_unit_test_setup_teardown(test_post_same_thread, setup_loop, teardown_loop),
	    cmocka_unit_test_setup_teardown(test_post_limit_and_failure, setup_loop, teardown_loop),
	    cmocka_unit_test(test_post_cross_thread),
	    cmocka_unit_test(test_worker_lifecycle),
	    cmocka_unit_test(test_worker_stop_before_start),
	    cmocka_unit_test(test_pool),
	    cmocka_unit_test(test_pool_repeated),
	    cmocka_unit_test(test_worker_ping_pong),
	    cmocka_unit_test(test_pool_stop_while_posting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
