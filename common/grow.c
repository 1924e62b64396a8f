/* grow — doubling the capacity of a realloc'd array (grow.h). */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>

void *grow_array(void *items, size_t need, size_t *cap, size_t elem_size, size_t first_cap)
{
    if (need <= *cap) return items;
    size_t nc = *cap ? *cap : first_cap ? first_cap : 1;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return NULL;
        nc *= 2;
    }
    if (elem_size && nc > SIZE_MAX / elem_size) return NULL;
    void *n = realloc(items, nc * elem_size);
    if (!n) return NULL;
    *cap = nc;
    return n;
}
