/* arena.c: bump allocator. */
#include "base/arena.h"

#include <string.h>

void *arena_alloc(struct arena *a, size_t size)
{
	size_t start = (a->used + 15u) & ~(size_t)15u;
	if (start > a->size || size > a->size - start)
		return NULL;
	a->used = start + size;
	void *p = a->buf + start;
	memset(p, 0, size);
	return p;
}
