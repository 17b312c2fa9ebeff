/* worker.c: a thread per loop, posting work between them, and the pool of workers. */
#include "loop/worker.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct worker {
	struct loop *loop;
	unsigned index;
	pthread_t thread;
	bool started; /* pthread_create succeeded */
	bool joined;
	int result; /* loop_run()'s return, written by the thread, read after join */
};

struct worker_pool {
	unsigned n;
	struct worker *w[];
};

static _Thread_local struct worker *worker_current;

struct worker *worker_self(void)
{
	return worker_current;
}

int worker_create(struct worker **out, unsigned index)
{
	*out = NULL;
	struct worker *w = loop_mem_realloc(NULL, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	memset(w, 0, sizeof(*w));
	w->index = index;
	int rc = loop_create(&w->loop);
	if (rc < 0) {
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	worker_current = w;
	char name[16];
	snprintf(name, sizeof(name), "sipsd-w%u", w->index);
	pthread_setname_np(pthread_self(), name);

	w->result = loop_run(w->loop);
	/* Still on our thread: run what was posted before the stop, refuse
	 * the rest, so no posted argument leaks or runs elsewhere. */
	loop_post_close(w->loop);
	worker_current = NULL;
	return NULL;
}

int worker_start(struct worker *w)
{
	if (w->started)
		return -EALREADY;
	/* The thread inherits the mask: block the asynchronous signals so
	 * they go to the main thread; faults stay deliverable. */
	sigset_t all, old;
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return -rc;
	w->started = true;
	w->joined = false;
	return 0;
}

void worker_stop(struct worker *w)
{
	loop_stop(w->loop);
}

int worker_join(struct worker *w)
{
	if (!w->started || w->joined)
		return 0;
	if (pthread_equal(pthread_self(), w->thread))
		return -EDEADLK;
	int rc = pthread_join(w->thread, NULL);
	if (rc != 0)
		return -rc;
	w->joined = true;
	return w->result;
}

void worker_destroy(struct worker *w)
{
	if (w == NULL)
		return;
	if (w->started && !w->joined) {
		worker_stop(w);
		worker_join(w);
	}
	loop_destroy(w->loop);
	free(w);
}

int worker_post(struct worker *w, loop_work_fn fn, void *arg)
{
	return loop_post(w->loop, fn, arg);
}

struct loop *worker_loop(struct worker *w)
{
	return w->loop;
}

unsigned worker_index(const struct worker *w)
{
	return w->index;
}

unsigned worker_default_count(void)
{
	long n = 0;
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0)
		n = 1;
	if (n > WORKER_MAX)
		n = WORKER_MAX;
	return (unsigned)n;
}

int worker_pool_create(struct worker_pool **out, unsigned n)
{
	*out = NULL;
	if (n == 0)
		n = worker_default_count();
	if (n > WORKER_MAX)
		return -EINVAL;
	struct worker_pool *p = loop_mem_realloc(NULL, sizeof(*p) + n * sizeof(p->w[0]));
	if (p == NULL)
		return -ENOMEM;
	memset(p, 0, sizeof(*p) + n * sizeof(p->w[0]));
	p->n = n;
	for (unsigned i = 0; i < n; i++) {
		int rc = worker_create(&p->w[i], i);
		if (rc < 0) {
			worker_pool_destroy(p);
			return rc;
		}
	}
	*out = p;
	return 0;
}

void worker_pool_destroy(struct worker_pool *p)
{
	if (p == NULL)
		return;
	worker_pool_stop(p);
	for (unsigned i = 0; i < p->n; i++)
		worker_destroy(p->w[i]);
	free(p);
}

int worker_pool_start(struct worker_pool *p)
{
	for (unsigned i = 0; i < p->n; i++) {
		int rc = worker_start(p->w[i]);
		if (rc < 0 && rc != -EALREADY) {
			worker_pool_stop(p);
			return rc;
		}
	}
	return 0;
}

int worker_pool_stop(struct worker_pool *p)
{
	int first = 0;
	for (unsigned i = 0; i < p->n; i++)
		if (p->w[i] != NULL && p->w[i]->started && !p->w[i]->joined)
			worker_stop(p->w[i]);
	for (unsigned i = 0; i < p->n; i++) {
		if (p->w[i] == NULL)
			continue;
		int rc = worker_join(p->w[i]);
		if (rc < 0 && first == 0)
			first = rc;
	}
	return first;
}

unsigned worker_pool_size(const struct worker_pool *p)
{
	return p->n;
}

struct worker *worker_pool_get(const struct worker_pool *p, unsigned index)
{
	return index < p->n ? p->w[index] : NULL;
}

int worker_pool_post(struct worker_pool *p, unsigned index, loop_work_fn fn, void *arg)
{
	struct worker *w = worker_pool_get(p, index);
	if (w == NULL)
		return -EINVAL;
	return worker_post(w, fn, arg);
}
