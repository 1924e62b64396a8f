/* fuzz_jobspec — libFuzzer harness for job validation and expansion, and for
 * the trial spec a worker reads: the input is parsed as one JSON value and,
 * when it is an object, checked by fz_check_job (fuzz_jobcheck.c). The seed
 * corpus holds valid job and trial specs for the fuzzer to mutate. */
#include <stdint.h>
#include <stdlib.h>

#include "jsonx.h"

#include "fuzz_common.h"

void fz_check_job(const json_t *job); /* fuzz_jobcheck.c */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[256] = "";
    json_t *v = jx_parse((const char *)data, size, msg, sizeof msg);
    if (!v) {
        fz_need_msg(msg, "jx_parse");
        return 0;
    }
    if (json_is_object(v)) fz_check_job(v);
    json_decref(v);
    return 0;
}
