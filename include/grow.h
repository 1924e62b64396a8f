/* grow — making room in a growable array, the one way every part appends to
 * a realloc'd array of its own (a list of files, a write queue, a table's
 * rows, a text buffer).
 *
 * The capacity starts at a size the caller picks and doubles until it holds
 * what is needed, so appending N items costs O(N) copies in all. A request
 * whose byte size would overflow size_t fails like an allocation failure. */
#ifndef SWEEP_GROW_H
#define SWEEP_GROW_H

#include <stddef.h>

/* Returns ITEMS when *CAP already holds NEED elements of ELEM_SIZE bytes;
 * else reallocates it to FIRST_CAP elements (when *CAP is 0) or *CAP doubled,
 * doubled again until NEED fit, sets *CAP and returns the new array (ITEMS is
 * then no longer valid). Returns NULL when out of memory: ITEMS and *CAP are
 * left as they were and the caller still owns ITEMS. FIRST_CAP must be > 0.
 * The caller owns the array and frees it with free(). */
void *grow_array(void *items, size_t need, size_t *cap, size_t elem_size, size_t first_cap);

#endif
