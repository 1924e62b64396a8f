/* Tests for the trial transition table (daemon/sched.c): every transition the
 * scheduler and recovery make is allowed, everything else is refused (through
 * the pure trial_transition_allowed, not by aborting), final states stay
 * final, and state names and the terminal predicate agree with the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "scheduler.h"
#include "worker_exit.h"

/* The allowed transitions, as the diagram next to the table draws them. */
static const struct {
    trial_state from, to;
} allowed[] = {
    {TS_QUEUED, TS_RUNNING},    {TS_QUEUED, TS_CANCELLED},  {TS_QUEUED, TS_FAILED},
    {TS_RUNNING, TS_QUEUED},    {TS_RUNNING, TS_COMPLETED}, {TS_RUNNING, TS_FAILED},
    {TS_RUNNING, TS_CANCELLED}, {TS_RUNNING, TS_PRUNED},
};

static bool in_list(trial_state from, trial_state to)
{
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        if (allowed[i].from == from && allowed[i].to == to) return true;
    return false;
}

static void test_allowed_pairs_accepted(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
        assert_true(trial_transition_allowed(allowed[i].from, allowed[i].to));
        /* The checking form agrees (and does not abort) for a legal pair. */
        assert_true(TRIAL_TRANSITION_CHECK(allowed[i].from, allowed[i].to));
    }
}

static void test_everything_else_refused(void **state)
{
    (void)state;
    int refused = 0;
    for (int f = 0; f < TS_COUNT; f++)
        for (int t = 0; t < TS_COUNT; t++)
            if (!in_list((trial_state)f, (trial_state)t)) {
                assert_false(trial_transition_allowed((trial_state)f, (trial_state)t));
                refused++;
            }
    assert_int_equal(refused, TS_COUNT * TS_COUNT - 8);
    /* A few that once happened or could be tempting. */
    assert_false(trial_transition_allowed(TS_QUEUED, TS_COMPLETED));
    assert_false(trial_transition_allowed(TS_QUEUED, TS_QUEUED));
    assert_false(trial_transition_allowed(TS_RUNNING, TS_RUNNING));
    assert_false(trial_transition_allowed(TS_COMPLETED, TS_QUEUED));
    assert_false(trial_transition_allowed(TS_CANCELLED, TS_RUNNING));
    assert_false(trial_transition_allowed(TS_QUEUED, TS_PRUNED));
    /* Out of range values are refused, not read past the table. */
    assert_false(trial_transition_allowed(TS_COUNT, TS_QUEUED));
    assert_false(trial_transition_allowed(TS_QUEUED, TS_COUNT));
    assert_false(trial_transition_allowed((trial_state)-1, TS_RUNNING));
}

static void test_final_states_stay_final(void **state)
{
    (void)state;
    for (int f = 0; f < TS_COUNT; f++) {
        bool any = false;
        for (int t = 0; t < TS_COUNT; t++)
            any |= trial_transition_allowed(f, t);
        /* Exactly the terminal states have no way out. */
        assert_int_equal(!any, trial_state_terminal((trial_state)f));
    }
    assert_string_equal(trial_state_name(TS_QUEUED), "queued");
    assert_string_equal(trial_state_name(TS_PRUNED), "pruned");
    assert_string_equal(trial_state_name(TS_COUNT), "?");
}

static void test_exit_contract(void **state)
{
    (void)state;
    /* README.md "Contract": the numbers are the contract with outside tools. */
    assert_int_equal(WEXIT_OK, 0);
    assert_int_equal(WEXIT_SPEC, 2);
    assert_int_equal(WEXIT_DATA, 3);
    assert_int_equal(WEXIT_MODEL, 4);
    assert_int_equal(WEXIT_DIVERGED, 5);
    assert_int_equal(WEXIT_NOMEM, 6);
    assert_int_equal(WEXIT_STOPPED, 7);
    /* 2..6 fail a trial at once; 0, 1, 7 and crashes do not. */
    for (int s = -1; s < 140; s++)
        assert_int_equal(worker_exit_is_final_failure(s), s >= 2 && s <= 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_pairs_accepted),
        cmocka_unit_test(test_everything_else_refused),
        cmocka_unit_test(test_final_states_stay_final),
        cmocka_unit_test(test_exit_contract),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
