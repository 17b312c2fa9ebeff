/* loop.c: epoll loop with an fd table, cached time, deferred work and a cross-thread inbox. */
#include "loop/loop.h"
#include "loop/timer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* epoll data of the wake-up eventfd; fd registrations carry (gen << 32 | fd)
 * with gen >= 1, so they never take this value. */
#define LOOP_WAKE_TAG UINT64_MAX
#define LOOP_FD_TABLE_MIN 64
#define LOOP_DEFER_INITIAL_CAP 64
#define LOOP_POST_INITIAL_CAP 64

struct loop_fd_slot {
	loop_io_fn cb;
	void *arg;
	uint32_t gen;	   /* registration number; stale epoll events carry an older one */
	uint32_t interest; /* LOOP_READ | LOOP_WRITE */
	bool used;
};

struct loop_item {
	loop_work_fn fn;
	void *arg;
};

/* A growable array of work items. */
struct loop_items {
	struct loop_item *v;
	size_t len;
	size_t cap;
};

struct loop {
	int epfd;
	int wakefd; /* eventfd: posts and cross-thread stops */
	uint64_t now_ms;
	bool busy; /* inside loop_run / loop_run_once */
	atomic_bool stop;

	struct loop_fd_slot *fds; /* indexed by fd */
	size_t fds_cap;
	size_t fds_used;
	uint32_t fd_gen;

	struct loop_timers timers;

	struct loop_items defer;	  /* loop_defer() */
	struct loop_deferred *defer_head; /* loop_defer_node(), FIFO */
	struct loop_deferred *defer_tail;

	pthread_mutex_t post_lock; /* guards post_in and post_closed */
	struct loop_items post_in; /* filled by any thread */
	bool post_closed;
	struct loop_items post_run; /* owned by the loop thread while draining */

	struct epoll_event events[LOOP_MAX_EVENTS];
};

/* ---- allocation with a failure hook for tests ---- */

static atomic_long mem_fail_after = -1;

void *loop_mem_realloc(void *p, size_t size)
{
	long n = atomic_load_explicit(&mem_fail_after, memory_order_relaxed);
	while (n >= 0) {
		if (n == 0)
			return NULL;
		if (atomic_compare_exchange_weak(&mem_fail_after, &n, n - 1))
			break;
	}
	return realloc(p, size);
}

void loop_mem_fail_after(long n)
{
	atomic_store(&mem_fail_after, n < 0 ? -1 : n);
}

/* Make room for one more item; -ENOMEM or -ENOBUFS past `max`. */
static int items_reserve(struct loop_items *a, size_t initial, size_t max)
{
	if (a->len < a->cap)
		return 0;
	if (a->cap >= max)
		return -ENOBUFS;
	size_t ncap = a->cap ? a->cap * 2 : initial;
	if (ncap > max)
		ncap = max;
	struct loop_item *nv = loop_mem_realloc(a->v, ncap * sizeof(*nv));
	if (nv == NULL)
		return -ENOMEM;
	a->v = nv;
	a->cap = ncap;
	return 0;
}

static void items_free(struct loop_items *a)
{
	free(a->v);
	a->v = NULL;
	a->len = a->cap = 0;
}

/* ---- time ---- */

static uint64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t loop_now_ms(const struct loop *loop)
{
	return loop->now_ms;
}

uint64_t loop_update_time(struct loop *loop)
{
	uint64_t now = monotonic_ms();
	if (now > loop->now_ms) /* never backwards, whatever the clock does */
		loop->now_ms = now;
	return loop->now_ms;
}

struct loop_timers *loop_timers_of(struct loop *loop)
{
	return &loop->timers;
}

size_t loop_timer_count(const struct loop *loop)
{
	return loop->timers.len;
}

/* ---- create / destroy ---- */

int loop_create(struct loop **out)
{
	*out = NULL;
	struct loop *loop = loop_mem_realloc(NULL, sizeof(*loop));
	if (loop == NULL)
		return -ENOMEM;
	memset(loop, 0, sizeof(*loop));
	loop->epfd = -1;
	loop->wakefd = -1;
	atomic_init(&loop->stop, false);
	loop_timers_init(&loop->timers);

	int rc = pthread_mutex_init(&loop->post_lock, NULL);
	if (rc != 0) {
		free(loop);
		return -rc;
	}
	/* Reserve the usual amount up front so that ordinary deferrals and
	 * posts do not allocate. */
	if (items_reserve(&loop->defer, LOOP_DEFER_INITIAL_CAP, LOOP_DEFER_MAX) < 0 ||
	    items_reserve(&loop->post_in, LOOP_POST_INITIAL_CAP, LOOP_POST_MAX) < 0) {
		rc = -ENOMEM;
		goto fail;
	}
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		rc = -errno;
		goto fail;
	}
	loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->wakefd < 0) {
		rc = -errno;
		goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LOOP_WAKE_TAG};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0) {
		rc = -errno;
		goto fail;
	}
	loop->now_ms = monotonic_ms();
	*out = loop;
	return 0;

fail:
	if (loop->wakefd >= 0)
		close(loop->wakefd);
	if (loop->epfd >= 0)
		close(loop->epfd);
	items_free(&loop->defer);
	items_free(&loop->post_in);
	pthread_mutex_destroy(&loop->post_lock);
	free(loop);
	return rc;
}

static void defer_drain(struct loop *loop);

void loop_destroy(struct loop *loop)
{
	if (loop == NULL)
		return;
	loop_post_close(loop); /* runs queued posts, then deferred work */
	defer_drain(loop);
	loop_timers_fini(&loop->timers);
	close(loop->wakefd);
	close(loop->epfd);
	free(loop->fds);
	items_free(&loop->defer);
	items_free(&loop->post_in);
	items_free(&loop->post_run);
	pthread_mutex_destroy(&loop->post_lock);
	free(loop);
}

/* ---- fds ---- */

static uint32_t events_to_epoll(uint32_t events)
{
	uint32_t e = 0;
	if (events & LOOP_READ)
		e |= EPOLLIN | EPOLLRDHUP;
	if (events & LOOP_WRITE)
		e |= EPOLLOUT;
	return e;
}

static uint32_t events_from_epoll(uint32_t e)
{
	uint32_t events = 0;
	if (e & (EPOLLIN | EPOLLPRI))
		events |= LOOP_READ;
	if (e & EPOLLOUT)
		events |= LOOP_WRITE;
	if (e & EPOLLERR)
		events |= LOOP_ERROR;
	if (e & (EPOLLHUP | EPOLLRDHUP))
		events |= LOOP_HUP;
	return events;
}

static struct loop_fd_slot *fd_slot(const struct loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->fds_cap || !loop->fds[fd].used)
		return NULL;
	return &loop->fds[fd];
}

static int fd_table_grow(struct loop *loop, int fd)
{
	size_t need = (size_t)fd + 1;
	if (need <= loop->fds_cap)
		return 0;
	size_t ncap = loop->fds_cap ? loop->fds_cap : LOOP_FD_TABLE_MIN;
	while (ncap < need)
		ncap *= 2;
	struct loop_fd_slot *nv = loop_mem_realloc(loop->fds, ncap * sizeof(*nv));
	if (nv == NULL)
		return -ENOMEM;
	memset(nv + loop->fds_cap, 0, (ncap - loop->fds_cap) * sizeof(*nv));
	loop->fds = nv;
	loop->fds_cap = ncap;
	return 0;
}

int loop_fd_add(struct loop *loop, int fd, uint32_t events, loop_io_fn cb, void *arg)
{
	if (fd < 0 || cb == NULL)
		return -EINVAL;
	if (fd_slot(loop, fd) != NULL)
		return -EEXIST;
	int rc = fd_table_grow(loop, fd);
	if (rc < 0)
		return rc;
	if (++loop->fd_gen == 0)
		loop->fd_gen = 1;
	uint32_t gen = loop->fd_gen;
	struct epoll_event ev = {
	    .events = events_to_epoll(events),
	    .data.u64 = ((uint64_t)gen << 32) | (uint32_t)fd,
	};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	struct loop_fd_slot *s = &loop->fds[fd];
	s->cb = cb;
	s->arg = arg;
	s->gen = gen;
	s->interest = events & (LOOP_READ | LOOP_WRITE);
	s->used = true;
	loop->fds_used++;
	return 0;
}

int loop_fd_modify(struct loop *loop, int fd, uint32_t events)
{
	struct loop_fd_slot *s = fd_slot(loop, fd);
	if (s == NULL)
		return -ENOENT;
	struct epoll_event ev = {
	    .events = events_to_epoll(events),
	    .data.u64 = ((uint64_t)s->gen << 32) | (uint32_t)fd,
	};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	s->interest = events & (LOOP_READ | LOOP_WRITE);
	return 0;
}

int loop_fd_remove(struct loop *loop, int fd)
{
	struct loop_fd_slot *s = fd_slot(loop, fd);
	if (s == NULL)
		return -ENOENT;
	memset(s, 0, sizeof(*s));
	loop->fds_used--;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
		return -errno;
	return 0;
}

size_t loop_fd_count(const struct loop *loop)
{
	return loop->fds_used;
}

/* ---- deferred work ---- */

int loop_defer(struct loop *loop, loop_work_fn fn, void *arg)
{
	if (fn == NULL)
		return -EINVAL;
	int rc = items_reserve(&loop->defer, LOOP_DEFER_INITIAL_CAP, LOOP_DEFER_MAX);
	if (rc < 0)
		return rc;
	loop->defer.v[loop->defer.len++] = (struct loop_item){fn, arg};
	return 0;
}

int loop_defer_node(struct loop *loop, struct loop_deferred *d, loop_work_fn fn, void *arg)
{
	if (fn == NULL)
		return -EINVAL;
	if (d->queued)
		return -EALREADY;
	d->fn = fn;
	d->arg = arg;
	d->next = NULL;
	d->queued = true;
	if (loop->defer_tail)
		loop->defer_tail->next = d;
	else
		loop->defer_head = d;
	loop->defer_tail = d;
	return 0;
}

static bool defer_pending(const struct loop *loop)
{
	return loop->defer.len > 0 || loop->defer_head != NULL;
}

/* Run deferred work until none is left, including work queued meanwhile. */
static void defer_drain(struct loop *loop)
{
	while (defer_pending(loop)) {
		/* The array may grow (move) while we run it: copy each item
		 * out before the call, index rather than point. */
		for (size_t i = 0; i < loop->defer.len; i++) {
			struct loop_item it = loop->defer.v[i];
			it.fn(it.arg);
		}
		loop->defer.len = 0;
		while (loop->defer_head != NULL) {
			struct loop_deferred *d = loop->defer_head;
			loop->defer_head = d->next;
			if (loop->defer_head == NULL)
				loop->defer_tail = NULL;
			d->next = NULL;
			d->queued = false;
			d->fn(d->arg); /* may free d */
		}
	}
}

/* ---- cross-thread inbox ---- */

static void wake(struct loop *loop)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is saturated: the loop is woken anyway. */
	ssize_t w = write(loop->wakefd, &one, sizeof(one));
	(void)w;
}

int loop_post(struct loop *loop, loop_work_fn fn, void *arg)
{
	if (fn == NULL)
		return -EINVAL;
	pthread_mutex_lock(&loop->post_lock);
	if (loop->post_closed) {
		pthread_mutex_unlock(&loop->post_lock);
		return -ESHUTDOWN;
	}
	int rc = items_reserve(&loop->post_in, LOOP_POST_INITIAL_CAP, LOOP_POST_MAX);
	if (rc < 0) {
		pthread_mutex_unlock(&loop->post_lock);
		return rc == -ENOBUFS ? -EAGAIN : rc;
	}
	bool was_empty = loop->post_in.len == 0;
	loop->post_in.v[loop->post_in.len++] = (struct loop_item){fn, arg};
	/* Only the post that makes the inbox non-empty wakes the loop; later
	 * ones find it non-empty and know a wake-up is on its way (the loop
	 * reads the eventfd before it takes the inbox). The write happens
	 * under the lock so that once loop_post_close() holds it no poster
	 * can still be about to write to an eventfd that loop_destroy() is
	 * going to close (a worker posting to another one that is shutting
	 * down). */
	if (was_empty)
		wake(loop);
	pthread_mutex_unlock(&loop->post_lock);
	return 0;
}

/* Take everything posted so far and run it; returns how many ran. */
static unsigned post_drain(struct loop *loop)
{
	pthread_mutex_lock(&loop->post_lock);
	struct loop_items tmp = loop->post_in;
	loop->post_in = loop->post_run; /* empty (len 0), keeps its capacity */
	loop->post_run = tmp;
	pthread_mutex_unlock(&loop->post_lock);

	size_t n = loop->post_run.len;
	for (size_t i = 0; i < n; i++)
		loop->post_run.v[i].fn(loop->post_run.v[i].arg);
	loop->post_run.len = 0;
	return (unsigned)n;
}

static unsigned wake_handle(struct loop *loop)
{
	uint64_t count;
	ssize_t r = read(loop->wakefd, &count, sizeof(count)); /* before the inbox */
	(void)r;
	return post_drain(loop);
}

void loop_post_close(struct loop *loop)
{
	pthread_mutex_lock(&loop->post_lock);
	loop->post_closed = true;
	pthread_mutex_unlock(&loop->post_lock);
	post_drain(loop); /* nothing can be added after closing: one pass */
	defer_drain(loop);
}

size_t loop_post_pending(struct loop *loop)
{
	pthread_mutex_lock(&loop->post_lock);
	size_t n = loop->post_in.len;
	pthread_mutex_unlock(&loop->post_lock);
	return n;
}

/* ---- running ---- */

void loop_stop(struct loop *loop)
{
	atomic_store(&loop->stop, true);
	wake(loop);
}

/* One iteration; returns callbacks run or a negative errno. loop_run asks
 * not to wait while a stop is pending (its wake-up may have been consumed
 * by an earlier loop_run_once). */
static int loop_iterate(struct loop *loop, int max_wait_ms, bool stop_nowait)
{
	loop_update_time(loop);
	int timeout = loop_timers_timeout(&loop->timers, loop->now_ms);
	if (max_wait_ms >= 0 && (timeout < 0 || timeout > max_wait_ms))
		timeout = max_wait_ms;
	if (defer_pending(loop) || (stop_nowait && atomic_load(&loop->stop)))
		timeout = 0;

	int n = epoll_wait(loop->epfd, loop->events, LOOP_MAX_EVENTS, timeout);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	loop_update_time(loop);

	unsigned ran = 0;
	for (int i = 0; i < n; i++) {
		uint64_t data = loop->events[i].data.u64;
		if (data == LOOP_WAKE_TAG) {
			ran += wake_handle(loop);
			continue;
		}
		int fd = (int)(uint32_t)data;
		uint32_t gen = (uint32_t)(data >> 32);
		struct loop_fd_slot *s = fd_slot(loop, fd);
		/* Removed, or removed and registered again, by an earlier
		 * callback of this iteration: the event is stale. */
		if (s == NULL || s->gen != gen)
			continue;
		uint32_t ev = events_from_epoll(loop->events[i].events) &
			      (s->interest | LOOP_ERROR | LOOP_HUP);
		if (ev == 0)
			continue;
		s->cb(fd, ev, s->arg); /* s may be invalid after this */
		ran++;
	}
	ran += loop_timers_run(loop);
	defer_drain(loop);
	return ran > INT32_MAX ? INT32_MAX : (int)ran;
}

int loop_run_once(struct loop *loop, int timeout_ms)
{
	if (loop->busy)
		return -EBUSY;
	loop->busy = true;
	int rc = loop_iterate(loop, timeout_ms, false);
	loop->busy = false;
	return rc;
}

int loop_run(struct loop *loop)
{
	if (loop->busy)
		return -EBUSY;
	loop->busy = true;
	int rc = 0;
	for (;;) {
		rc = loop_iterate(loop, -1, true);
		if (rc < 0)
			break;
		if (atomic_exchange(&loop->stop, false)) {
			rc = 0;
			break;
		}
	}
	loop->busy = false;
	return rc;
}
