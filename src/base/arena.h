/* arena.h: bump allocator over a fixed buffer, one per message. */
#ifndef SIPSD_BASE_ARENA_H
#define SIPSD_BASE_ARENA_H

#include <stddef.h>
#include <string.h>

/* An arena hands out aligned pieces of `buf` until it is full; nothing is
 * freed individually. The buffer belongs to whoever made the arena. */
struct arena {
	unsigned char *buf;
	size_t size;
	size_t used;
};

static inline void arena_init(struct arena *a, void *buf, size_t size)
{
	a->buf = buf;
	a->size = size;
	a->used = 0;
}

/* Zeroed, 16-byte aligned memory of `size` bytes, or NULL when the arena is
 * exhausted (the caller reports -ENOMEM / a limit error). Inline: the
 * parser allocates a few dozen small objects per message, and a constant
 * `size` lets the compiler zero them without a call. */
static inline void *arena_alloc(struct arena *a, size_t size)
{
	size_t start = (a->used + 15u) & ~(size_t)15u;
	if (start > a->size || size > a->size - start)
		return NULL;
	a->used = start + size;
	void *p = a->buf + start;
	memset(p, 0, size);
	return p;
}

/* Like arena_alloc, but the memory is not zeroed: for an object the caller
 * fills completely. */
static inline void *arena_alloc_raw(struct arena *a, size_t size)
{
	size_t start = (a->used + 15u) & ~(size_t)15u;
	if (start > a->size || size > a->size - start)
		return NULL;
	a->used = start + size;
	return a->buf + start;
}

static inline void arena_reset(struct arena *a)
{
	a->used = 0;
}

#endif
