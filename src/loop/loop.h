/* loop.h: one epoll event loop per thread: fds, timers, deferred work, posts. */
#ifndef SIPSD_LOOP_LOOP_H
#define SIPSD_LOOP_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A loop belongs to one thread: every function here must be called on the
 * thread that runs the loop, except loop_post() and loop_stop(), which any
 * thread may call while the loop exists. See docs/loop.md.
 *
 * One iteration: wait for fds (timeout from the earliest timer), refresh the
 * cached time, run fd callbacks (posted work arrives as one of them), run
 * due timers, then run deferred work. Deferred work therefore always runs
 * after every callback of the iteration has returned.
 */
struct loop;

/* Event bits: interest given to loop_fd_add/modify (LOOP_READ, LOOP_WRITE)
 * and reported to callbacks (plus LOOP_ERROR, LOOP_HUP, which are always
 * reported, even with no interest). Level-triggered. */
#define LOOP_READ 0x1u
#define LOOP_WRITE 0x2u
#define LOOP_ERROR 0x4u
#define LOOP_HUP 0x8u

/* Limits of the loop layer (design.md: every growth path has a named one). */
/* Deferred calls queued by loop_defer() in one iteration. */
#define LOOP_DEFER_MAX (1u << 20)
/* Items waiting in one loop's cross-thread inbox (loop_post()). */
#define LOOP_POST_MAX (1u << 18)
/* epoll events taken per epoll_wait(). */
#define LOOP_MAX_EVENTS 256

/* fd readiness: `events` is a LOOP_* mask; `arg` as registered. */
typedef void (*loop_io_fn)(int fd, uint32_t events, void *arg);
/* Timer, deferred and posted work: `arg` as given. */
typedef void (*loop_work_fn)(void *arg);

/* Make a loop (epoll instance, wake-up eventfd, empty tables) and store it
 * in *out; the caller owns it and ends it with loop_destroy(). The cached
 * time is set. Returns 0, -ENOMEM, or the negative errno of
 * epoll_create1()/eventfd(). */
int loop_create(struct loop **out);

/* End a loop that is not running: runs the posted work still queued and the
 * pending deferred work (so owned arguments are released; both may queue
 * more, which also runs), detaches armed timers (their owners still own
 * their memory; cancelling them later is a no-op), closes the loop's own fds
 * and frees it. Registered fds are not closed: they belong to the caller.
 * Must not race with loop_post()/loop_stop() from other threads. NULL is a
 * no-op. */
void loop_destroy(struct loop *loop);

/* Watch `fd` (not owned; remove it before closing it) for `events`
 * (LOOP_READ|LOOP_WRITE, may be 0 to watch errors only) and call
 * cb(fd, reported, arg) on readiness. Returns 0, -EEXIST when the fd is
 * already registered, -EINVAL for a negative fd or NULL cb, -ENOMEM, or the
 * negative errno of epoll_ctl() (-EBADF, -EPERM for regular files). */
int loop_fd_add(struct loop *loop, int fd, uint32_t events, loop_io_fn cb, void *arg);

/* Change the interest of a registered fd; a pending event of the old
 * interest in this iteration is not reported. Returns 0, -ENOENT when the fd
 * is not registered, or the negative errno of epoll_ctl(). */
int loop_fd_modify(struct loop *loop, int fd, uint32_t events);

/* Stop watching `fd`; safe from inside any callback, including the fd's
 * own: events of this fd still pending in the current iteration are
 * dropped, even if the same fd number is registered again meanwhile. The
 * registration is forgotten whatever happens. Returns 0, -ENOENT when the fd
 * was not registered, or the negative errno of epoll_ctl() (-EBADF when it
 * was closed first). */
int loop_fd_remove(struct loop *loop, int fd);

/* Run iterations until loop_stop(). Returns 0 after a stop, -EBUSY when the
 * loop is already running (a callback called loop_run), or the negative
 * errno of epoll_wait(). A stop requested before the call makes it return
 * after its first iteration: stops are never lost. */
int loop_run(struct loop *loop);

/* Run one iteration, waiting at most `timeout_ms` for fds (-1: until an fd,
 * a post or the earliest timer; 0: do not wait). Never waits while deferred
 * work is pending. Returns the number of fd callbacks, posted items and
 * timers run (>= 0), -EBUSY when called from a callback, or the negative
 * errno of epoll_wait(). For tests and for embedding in another loop. */
int loop_run_once(struct loop *loop, int timeout_ms);

/* Ask loop_run() to return after the current iteration. Any thread; safe
 * while the loop exists. */
void loop_stop(struct loop *loop);

/* The monotonic time in milliseconds cached at the start of the current
 * iteration (the same value for every callback of the iteration). */
uint64_t loop_now_ms(const struct loop *loop);

/* Refresh the cached time from CLOCK_MONOTONIC (after long work inside a
 * callback) and return it. */
uint64_t loop_update_time(struct loop *loop);

/* Run fn(arg) on the loop's thread after the current iteration's callbacks
 * have returned (or at the end of the next iteration when called outside
 * one): the way to free an object from inside its own callback. Deferred
 * calls run in the order queued; one may queue more, which run in the same
 * drain. Ownership of `arg` passes to fn only when 0 is returned. Returns 0,
 * -ENOMEM, or -ENOBUFS past LOOP_DEFER_MAX in one iteration. Use
 * loop_defer_node() where failure is not acceptable. */
int loop_defer(struct loop *loop, loop_work_fn fn, void *arg);

/* Deferred call whose memory the caller provides (embed it in the object),
 * so queueing it cannot fail. Zero it (or let it be unused) before the first
 * use; it must stay valid until fn runs and must not be queued twice. */
struct loop_deferred {
	struct loop_deferred *next;
	loop_work_fn fn;
	void *arg;
	bool queued;
};

/* Queue `d` to run fn(arg) like loop_defer() (same drain). Calling it again
 * while `d` is still queued is a no-op that returns -EALREADY; otherwise
 * returns 0. */
int loop_defer_node(struct loop *loop, struct loop_deferred *d, loop_work_fn fn, void *arg);

/* From any thread: run fn(arg) on the loop's thread during a later
 * iteration (FIFO per posting thread), waking the loop with its eventfd.
 * Ownership of `arg` passes to fn only when 0 is returned. Returns 0,
 * -ENOMEM, -EAGAIN when LOOP_POST_MAX items are already waiting (back
 * pressure: the loop is not keeping up), or -ESHUTDOWN once the loop is
 * being destroyed or loop_post_close() was called. */
int loop_post(struct loop *loop, loop_work_fn fn, void *arg);

/* On the loop's thread, outside callbacks: refuse further posts (they get
 * -ESHUTDOWN) and run every item still queued, so nothing posted is lost.
 * Used by a worker thread on its way out. */
void loop_post_close(struct loop *loop);

/* Statistics: registered fds, armed timers, queued posts (approximate when
 * read from another thread; any thread for posts, the loop's for others). */
size_t loop_fd_count(const struct loop *loop);
size_t loop_timer_count(const struct loop *loop);
size_t loop_post_pending(struct loop *loop);

/* Allocation used by the loop layer (realloc semantics: p NULL allocates,
 * never called with size 0). Returns NULL on failure. */
void *loop_mem_realloc(void *p, size_t size);

/* Testing only, process-wide: let the next `n` loop-layer allocations
 * succeed and fail every later one, until called with n < 0. */
void loop_mem_fail_after(long n);

#endif
