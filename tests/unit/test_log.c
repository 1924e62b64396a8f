/* Tests for common/log.c: line format, levels, files, reopen after rotation,
 * whole lines under concurrency, and SWEEP_ASSERT aborting with file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "errors.h"
#include "log.h"
#include "util_jpeg.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char dir[256];  // scratch directory
    char path[300]; // DIR/sweepd.log
} logfix;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    logfix *f = calloc(1, sizeof *f);
    if (!f) return -1;
    if (tju_mkdtemp(f->dir, sizeof f->dir, "log") < 0) return -1;
    snprintf(f->path, sizeof f->path, "%s/sweepd.log", f->dir);
    log_set_level(LOGL_INFO);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    logfix *f = *state;
    log_close();
    log_set_level(LOGL_INFO);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) n = 0;
    if (b) b[n] = '\0';
    fclose(fp);
    return b;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        if (*s == '\n') n++;
    return n;
}

static int matches(const char *re, const char *s)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NEWLINE) != 0) return -1;
    int ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

static void test_level_parse(void **state)
{
    (void)state;
    log_level l;
    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, LOGL_DEBUG);
    assert_int_equal(log_level_parse("INFO", &l), 0);
    assert_int_equal(l, LOGL_INFO);
    assert_int_equal(log_level_parse("Warn", &l), 0);
    assert_int_equal(l, LOGL_WARN);
    assert_int_equal(log_level_parse("warning", &l), 0);
    assert_int_equal(l, LOGL_WARN);
    assert_int_equal(log_level_parse("error", &l), 0);
    assert_int_equal(l, LOGL_ERROR);
    assert_int_equal(log_level_parse("off", &l), 0);
    assert_int_equal(l, LOGL_OFF);
    l = LOGL_ERROR;
    assert_true(log_level_parse("verbose", &l) < 0);
    assert_true(log_level_parse("", &l) < 0);
    assert_true(log_level_parse(NULL, &l) < 0);
    assert_int_equal(l, LOGL_ERROR);
}

static void test_level_names(void **state)
{
    (void)state;
    assert_string_equal(log_level_name(LOGL_DEBUG), "debug");
    assert_string_equal(log_level_name(LOGL_INFO), "info");
    assert_string_equal(log_level_name(LOGL_WARN), "warn");
    assert_string_equal(log_level_name(LOGL_ERROR), "error");
    assert_string_equal(log_level_name(LOGL_OFF), "off");
    log_set_level(LOGL_ERROR);
    assert_int_equal(log_get_level(), LOGL_ERROR);
    log_set_level(LOGL_INFO);
}

static void test_line_format(void **state)
{
    logfix *f = *state;
    char msg[256];
    assert_int_equal(log_open(f->path, msg, sizeof msg), 0);
    log_info("trial %d queued -> running", 17);
    int line = __LINE__ - 1;
    log_close();
    char *s = slurp(f->path);
    assert_non_null(s);
    char re[256];
    snprintf(re, sizeof re,
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z INFO  "
             "test_log\\.c:%d trial 17 queued -> running\n$",
             line);
    if (matches(re, s) != 1) fail_msg("line does not match: %s", s);
    free(s);
}

static void test_level_filter(void **state)
{
    logfix *f = *state;
    char msg[256];
    assert_int_equal(log_open(f->path, msg, sizeof msg), 0);
    log_set_level(LOGL_WARN);
    log_debug("hidden debug");
    log_info("hidden info");
    log_warn("shown warn");
    log_error("shown error");
    log_set_level(LOGL_DEBUG);
    log_debug("shown debug");
    log_set_level(LOGL_OFF);
    log_error("hidden error");
    log_close();
    char *s = slurp(f->path);
    assert_int_equal(count_lines(s), 3);
    assert_null(strstr(s, "hidden"));
    assert_non_null(strstr(s, " WARN  test_log.c:"));
    assert_non_null(strstr(s, " ERROR test_log.c:"));
    assert_non_null(strstr(s, " DEBUG test_log.c:"));
    free(s);
}

static void test_message_is_one_line(void **state)
{
    logfix *f = *state;
    char msg[256];
    assert_int_equal(log_open(f->path, msg, sizeof msg), 0);
    log_info("job name \"a\nb\r\nc\"");
    log_info("trailing newline\n");
    log_close();
    char *s = slurp(f->path);
    assert_int_equal(count_lines(s), 2);
    assert_non_null(strstr(s, "job name \"a b  c\"\n"));
    assert_non_null(strstr(s, "trailing newline\n"));
    free(s);
}

static void test_long_message_truncated(void **state)
{
    logfix *f = *state;
    char msg[256];
    size_t n = 20000;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    assert_int_equal(log_open(f->path, msg, sizeof msg), 0);
    log_info("%s", big);
    log_info("after");
    log_close();
    free(big);
    char *s = slurp(f->path);
    assert_int_equal(count_lines(s), 2);
    char *nl = strchr(s, '\n');
    assert_true(nl - s < 9000);
    assert_memory_equal(nl - 3, "...", 3);
    assert_non_null(strstr(nl + 1, " after\n"));
    free(s);
}

static void test_open_appends_and_mode(void **state)
{
    logfix *f = *state;
    char msg[256];
    FILE *fp = fopen(f->path, "w");
    fputs("existing line\n", fp);
    fclose(fp);
    assert_int_equal(log_open(f->path, msg, sizeof msg), 0);
    log_info("new");
    log_close();
    char *s = slurp(f->path);
    assert_int_equal(strncmp(s, "existing line\n", 14), 0);
    assert_int_equal(count_lines(s), 2);
    free(s);

    char p2[320];
    snprintf(p2, sizeof p2, "%s/fresh.log", f->dir);
    mode_t old = umask(022);
    assert_int_equal(log_open(p2, msg, sizeof msg), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(p2, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
}

/* Finds the descriptor open on PATH in /proc/self/fd, or -1. */
static int fd_for(const char *path)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    struct dirent *e;
    int found = -1;
    while ((e = readdir(d))) {
        char link[320], target[512];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n < 0) continue;
        target[n] = '\0';
        if (strcmp(target, path) == 0) found = atoi(e->d_name);
    }
    closedir(d);
    return found;
}

static void test_file_is_cloexec(void **state)
{
    logfix *f = *state;
    char msg[256];
    assert_int_equal(log_open(f->path, msg, sizeof msg), 0);
    int fd = fd_for(f->path);
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_true(fcntl(fd, F_GETFL) & O_APPEND);
}

static void test_open_failure_keeps_previous(void **state)
{
    logfix *f = *state;
    char msg[256];
    assert_int_equal(log_open(f->path, msg, sizeof msg), 0);
    assert_int_equal(log_open("/nonexistent-dir/x.log", msg, sizeof msg), ERR_IO);
    assert_non_null(strstr(msg, "/nonexistent-dir/x.log"));
    log_info("still here");
    log_close();
    char *s = slurp(f->path);
    assert_non_null(strstr(s, "still here"));
    free(s);
}

static void test_reopen_after_rotation(void **state)
{
    logfix *f = *state;
    char msg[256], rotated[320];
    snprintf(rotated, sizeof rotated, "%s.1", f->path);
    assert_int_equal(log_open(f->path, msg, sizeof msg), 0);
    log_info("before rotation");
    assert_int_equal(rename(f->path, rotated), 0);
    log_info("between");
    assert_int_equal(log_reopen(), 0);
    log_info("after rotation");
    log_close();
    char *old = slurp(rotated), *cur = slurp(f->path);
    assert_non_null(old);
    assert_non_null(cur);
    assert_non_null(strstr(old, "before rotation"));
    assert_non_null(strstr(old, "between"));
    assert_null(strstr(old, "after rotation"));
    assert_int_equal(count_lines(cur), 1);
    assert_non_null(strstr(cur, "after rotation"));
    free(old);
    free(cur);
}

static void test_reopen_failure_keeps_old_file(void **state)
{
    logfix *f = *state;
    char msg[256], moved[300], sub[300], subpath[320], movedpath[320];
    snprintf(sub, sizeof sub, "%s/sub", f->dir);
    snprintf(moved, sizeof moved, "%s/moved", f->dir);
    mkdir(sub, 0755);
    snprintf(subpath, sizeof subpath, "%s/a.log", sub);
    snprintf(movedpath, sizeof movedpath, "%s/a.log", moved);
    assert_int_equal(log_open(subpath, msg, sizeof msg), 0);
    assert_int_equal(rename(sub, moved), 0); /* the path no longer resolves */
    assert_int_equal(log_reopen(), ERR_IO);
    log_info("kept writing");
    log_close();
    char *s = slurp(movedpath);
    assert_non_null(s);
    assert_non_null(strstr(s, "cannot reopen log file"));
    assert_non_null(strstr(s, "kept writing"));
    free(s);
}

static void test_stderr_default_and_reopen_noop(void **state)
{
    logfix *f = *state;
    log_close();
    assert_int_equal(log_reopen(), 0);
    int saved = dup(STDERR_FILENO);
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDERR_FILENO);
    close(fd);
    log_warn("to stderr %s", "ok");
    char msg[64];
    assert_int_equal(log_open(NULL, msg, sizeof msg), 0);
    log_warn("also stderr");
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *s = slurp(f->path);
    assert_non_null(strstr(s, " WARN  test_log.c:"));
    assert_non_null(strstr(s, "to stderr ok\n"));
    assert_non_null(strstr(s, "also stderr\n"));
    free(s);
}

typedef struct {
    int id; // thread number
} worker_arg;

static void *writer(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < 300; i++)
        log_info("thread %d line %d %s", a->id, i, "padding-padding-padding-padding-padding");
    return NULL;
}

static void test_threads_never_interleave(void **state)
{
    logfix *f = *state;
    char msg[256];
    assert_int_equal(log_open(f->path, msg, sizeof msg), 0);
    pthread_t th[4];
    worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i].id = i;
        pthread_create(&th[i], NULL, writer, &args[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    log_close();
    char *s = slurp(f->path);
    assert_int_equal(count_lines(s), 1200);
    regex_t r;
    assert_int_equal(regcomp(&r,
                             "^[0-9-]{10}T[0-9:.]{12}Z INFO  test_log\\.c:[0-9]+ thread [0-3] line "
                             "[0-9]+ padding-padding-padding-padding-padding$",
                             REG_EXTENDED),
                     0);
    char *save = NULL;
    int good = 0;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (regexec(&r, line, 0, NULL, 0) == 0) good++;
    regfree(&r);
    assert_int_equal(good, 1200);
    free(s);
}

static void test_assert_pass_does_nothing(void **state)
{
    (void)state;
    int x = 3;
    SWEEP_ASSERT(x == 3);
    assert_int_equal(x, 3);
}

static void test_assert_failure_aborts_with_location(void **state)
{
    logfix *f = *state;
    int line = 0;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char msg[256];
        /* Silence stderr in the child; the assertion goes to the file too. */
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        log_set_level(LOGL_OFF); /* assertions are logged whatever the level */
        if (log_open(f->path, msg, sizeof msg) != 0) _exit(3);
        int two = 2;
        SWEEP_ASSERT(two == 1);
        _exit(0);
    }
    line = __LINE__ - 3;
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    char *s = slurp(f->path);
    assert_non_null(s);
    char want[128];
    snprintf(want, sizeof want, " ERROR test_log.c:%d assertion failed: two == 1\n", line);
    if (!strstr(s, want)) fail_msg("missing \"%s\" in: %s", want, s);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_level_names),
        cmocka_unit_test_setup_teardown(test_line_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_is_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_message_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_appends_and_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_is_cloexec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_failure_keeps_previous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_failure_keeps_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stderr_default_and_reopen_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_never_interleave, setup, teardown),
        cmocka_unit_test(test_assert_pass_does_nothing),
        cmocka_unit_test_setup_teardown(test_assert_failure_aborts_with_location, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
