/* Tests for common/grow.c: the first capacity, doubling until the need fits,
 * no reallocation while it fits, and failures that leave the array alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "grow.h"

#include <stdlib.h>

static void test_first_and_doubling(void **state)
{
    (void)state;
    size_t cap = 0;
    int *v = grow_array(NULL, 1, &cap, sizeof *v, 4);
    assert_non_null(v);
    assert_int_equal(cap, 4);
    for (int i = 0; i < 4; i++)
        v[i] = i;
    assert_ptr_equal(grow_array(v, 4, &cap, sizeof *v, 4), v); // fits: same array
    assert_int_equal(cap, 4);
    v = grow_array(v, 5, &cap, sizeof *v, 4);
    assert_non_null(v);
    assert_int_equal(cap, 8);
    for (int i = 0; i < 4; i++)
        assert_int_equal(v[i], i);             // contents kept
    v = grow_array(v, 33, &cap, sizeof *v, 4); // doubled until it fits
    assert_non_null(v);
    assert_int_equal(cap, 64);
    free(v);
    cap = 0;
    char *b = grow_array(NULL, 300, &cap, 1, 256); // first capacity doubled too
    assert_non_null(b);
    assert_int_equal(cap, 512);
    free(b);
}

static void test_overflow(void **state)
{
    (void)state;
    size_t cap = 8;
    int *v = malloc(cap * sizeof *v);
    assert_non_null(v);
    assert_null(grow_array(v, SIZE_MAX / 2, &cap, sizeof *v, 8)); // bytes overflow
    assert_int_equal(cap, 8);
    assert_null(grow_array(v, SIZE_MAX, &cap, 1, 8)); // capacity overflow
    assert_int_equal(cap, 8);
    v[7] = 7; // still the caller's
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_and_doubling),
        cmocka_unit_test(test_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
