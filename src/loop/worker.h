/* worker.h: worker threads, each running its own loop, and the pool of them. */
#ifndef SIPSD_LOOP_WORKER_H
#define SIPSD_LOOP_WORKER_H

#include "loop/loop.h"

/*
 * A worker is a thread that runs one loop; everything on that loop
 * (connections, transactions, their timers) belongs to the worker. Other
 * threads hand it work with worker_post(). The index (0..N-1) identifies the
 * worker inside its pool and is what later layers encode in what comes back
 * from the network (e.g. the Via branch) so that a response reaches the
 * worker owning its transaction. An index read from the network is
 * untrusted: go through worker_pool_get()/worker_pool_post(), which check it.
 */
struct worker;
struct worker_pool;

/* Most workers in one pool (an index fits in one byte). */
#define WORKER_MAX 256

/* Make a worker with index `index` and its loop (created here, so work can
 * be posted and fds registered before the thread starts; posted work waits
 * until then). Stores it in *out; the caller owns it. Returns 0, -ENOMEM or
 * an error of loop_create(). */
int worker_create(struct worker **out, unsigned index);

/* Stop and join the thread if it runs, then destroy the loop (see
 * loop_destroy) and free the worker. Not from the worker's own thread. NULL
 * is a no-op. */
void worker_destroy(struct worker *w);

/* Start the thread (all signals blocked in it: signals belong to the main
 * thread). Runs the loop until worker_stop(); on its way out the thread runs
 * every item still posted and refuses later posts. A worker starts once.
 * Returns 0, -EALREADY when it was started before, or the negative error of
 * pthread_create(). */
int worker_start(struct worker *w);

/* Ask the worker's loop to stop; any thread, returns at once. */
void worker_stop(struct worker *w);

/* Wait for the thread to end after worker_stop() (a no-op when it never
 * started or was joined already). Not from the worker's own thread.
 * Returns 0, -EDEADLK from the worker's own thread, or the loop's error
 * when it ended on one. */
int worker_join(struct worker *w);

/* From any thread: run fn(arg) on the worker's thread (see loop_post for
 * ownership, order, back pressure). Returns 0 or the error of loop_post();
 * -ESHUTDOWN once the worker's thread has ended. The worker must still
 * exist: destroy a pool only after every thread that may post to it has
 * stopped posting (other workers: stop and join the whole pool first). */
int worker_post(struct worker *w, loop_work_fn fn, void *arg);

/* The worker's loop: use it from the worker's thread only (or before start). */
struct loop *worker_loop(struct worker *w);

/* The index given at creation. */
unsigned worker_index(const struct worker *w);

/* The worker whose thread is calling, or NULL on any other thread. */
struct worker *worker_self(void);

/* Workers to run by default: the CPUs this process may use (at least 1,
 * at most WORKER_MAX). */
unsigned worker_default_count(void);

/* Make a pool of `n` workers with indexes 0..n-1 (n == 0: the default
 * count). Stores it in *out; the caller owns it. Returns 0, -EINVAL when
 * n > WORKER_MAX, -ENOMEM or an error of worker_create(). */
int worker_pool_create(struct worker_pool **out, unsigned n);

/* Stop and join the pool if running, destroy every worker, free the pool.
 * NULL is a no-op. */
void worker_pool_destroy(struct worker_pool *p);

/* Start every worker. On failure the ones already started are stopped and
 * joined again. Returns 0 or the error of worker_start(). */
int worker_pool_start(struct worker_pool *p);

/* Stop every worker, then join them all (not from a worker thread).
 * Returns 0 or the first error of worker_join(). */
int worker_pool_stop(struct worker_pool *p);

/* Number of workers. */
unsigned worker_pool_size(const struct worker_pool *p);

/* Worker number `index`, or NULL when out of range. */
struct worker *worker_pool_get(const struct worker_pool *p, unsigned index);

/* worker_post() to worker number `index`; -EINVAL when out of range. */
int worker_pool_post(struct worker_pool *p, unsigned index, loop_work_fn fn, void *arg);

#endif
