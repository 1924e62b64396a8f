/* fake_worker — a scripted stand-in for sweep-worker used by the daemon's
 * integration tests and benchmark. It speaks the same protocol (argv, trial
 * spec, JSON events on stdout, exit codes) without training anything.
 *
 *   fake_worker run TRIAL.json
 *   fake_worker eval --weights FILE --data DIR
 *
 * Behaviour comes from DATA/fake.json, where DATA is the trial's data.train
 * directory (so each test's job picks its own script), and FAKE_* variables:
 *   {"default": {RULE}, "rules": [{"match": {"lr": 0.1}, ...RULE}, ...],
 *    "test_accuracy": 0.77}
 * The first rule whose "match" keys all equal the trial's params (or "trial",
 * the trial id) is merged over "default". RULE keys:
 *   sleep        seconds per epoch (default 0.02)
 *   epochs       epochs to run (default params.epochs)
 *   progress     progress events per epoch (default 1)
 *   action       "ok" | "exit" | "crash" (SIGSEGV-like abort) | "hang" |
 *                "flood" (junk, an oversized line, then normal) | "noop"
 *                (start + one epoch + done at once, no files) | "burst" (the run of
 *                "ok", but after `sleep` seconds every line — start, each
 *                epoch's progress, epoch and checkpoint lines, done — goes out
 *                in one write(2) and the process exits at once, so sweepd reads
 *                them in the same drain as the exit; `sleep` is not used
 *                between epochs)
 *   burst_apart  with "burst": the start line is written on its own first,
 *                the rest `sleep` seconds later in one write with the exit
 *                "hostile" (the run of "ok", plus lines that break the event
 *                contract right after the events of epoch `at_epoch`): a line
 *                that is not JSON (with terminal escapes), an epoch 99999 of
 *                the trial's epochs, that epoch again with val_accuracy "abc",
 *                with its fields missing and with val_accuracy 2.5 (the last,
 *                so a daemon that stores it overwrites the good row), an
 *                unknown event "pwned" padded to 600 bytes and a progress
 *                step 9 of 4 steps: 6 invalid events
 *   hostile_repeat  with "hostile": write those lines this many times (default 1)
 *   hostile_done with "hostile": then a "done" with val_accuracy 0.99, before
 *                the last epoch (the run then goes on)
 *   hostile_exit with "hostile": exit 0 right after those lines (no
 *                completions line, no best.safetensors)
 *   code         exit status for "exit" (default 3), with an error event
 *   message      error message for "exit"
 *   at_epoch     epoch before which the action happens (default 1)
 *   fail_attempts  act only while fewer than this many earlier starts of the
 *                trial happened (counted in OUT_DIR/fake_starts), then behave
 *                like "ok" — for retry tests (default: always)
 *   ignore_term  true: ignore SIGTERM (to test SIGKILL after the grace)
 *   wait_file    a path: wait until it exists before starting (a test opens
 *                this gate once a `watch` is attached; gives up with exit 9
 *                after 60 s)
 *   pause_at     a kill point for the fault campaign (fault_campaign.sh): the
 *                worker stops at it, writes `pause_file`.at.<pid> and waits
 *                until `pause_file` exists (exit 9 after 60 s). Points:
 *                "before_start" (before the start event), "start" (after it),
 *                "progress" (after progress event `pause_step` of epoch
 *                `pause_epoch`), "epoch" (after that epoch's event, before its
 *                checkpoint is written), "checkpoint" (after its checkpoint
 *                event), "done" (after the done event, before exiting), "term"
 *                (on SIGTERM, before the checkpoint is written: a second
 *                SIGTERM or the file lets it go on). SIGTERM while paused
 *                elsewhere stops as it would at that point (checkpoint of the
 *                last finished epoch, exit 7; after "done": exit 0).
 *   pause_epoch, pause_step   see pause_at (default 1)
 *   curve        a list of numbers: val_accuracy of epoch e is curve[e-1]
 *                (the last entry for later epochs; val_loss is 1 - it),
 *                instead of the function of lr below (pruner tests)
 * SIGTERM: writes OUT_DIR/ckpt.json (last finished epoch), a checkpoint event,
 * exits 7. A later run resumes after that epoch. Each successful finish
 * appends one line to OUT_DIR/completions and writes OUT_DIR/best.safetensors.
 * `eval` reads DATA/fake.json too (DATA = its --data directory): "test_accuracy"
 * (default 0.5), "eval_sleep" (seconds before it answers) and the kill points
 * "eval_pause_at" ("eval": before it answers, "result": after it answered,
 * before exiting) with "eval_pause_file", as pause_at above (SIGTERM ends it);
 * each evaluation that answers appends its weights path to DATA/evals;
 * "eval_exit" N (non-zero) makes it write an error event ("eval_message")
 * and exit N instead. Rule keys "skipped_files" and "bad_images" (integers)
 * go into the start event as they are.
 * FAKE_NOOP=1 forces "noop" (benchmark). val_accuracy is a fixed function of
 * lr and epoch, best at lr = 0.01. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static volatile sig_atomic_t got_term = 0;
static json_t *g_spec, *g_cfg, *g_rule; // freed at exit, whichever way main returns
static void cleanup(void)
{
    json_decref(g_spec);
    json_decref(g_cfg);
    json_decref(g_rule);
}
static void on_term(int s)
{
    (void)s;
    got_term = 1;
}

static double t0;
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static FILE *g_burst;      // "burst": lines collect here (open_memstream) instead of stdout
static char *g_burst_buf;  // its buffer
static size_t g_burst_len; // its length after fflush/fclose

static void emit(json_t *ev)
{
    json_object_set_new(ev, "t", json_real(now() - t0));
    char *s = json_dumps(ev, JSON_COMPACT);
    if (s) {
        FILE *f = g_burst ? g_burst : stdout;
        fprintf(f, "%s\n", s);
        fflush(f);
        free(s);
    }
    json_decref(ev);
}

/* "burst": starts collecting lines. */
static void burst_begin(void)
{
    g_burst_buf = NULL;
    g_burst_len = 0;
    g_burst = open_memstream(&g_burst_buf, &g_burst_len);
}

/* "burst": writes the collected lines to stdout in one write(2) (looping only
 * if the kernel takes part of it) and stops collecting. */
static void burst_end(void)
{
    if (!g_burst) return;
    fclose(g_burst);
    g_burst = NULL;
    size_t off = 0;
    while (off < g_burst_len) {
        ssize_t n = write(STDOUT_FILENO, g_burst_buf + off, g_burst_len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += (size_t)n;
    }
    free(g_burst_buf);
    g_burst_buf = NULL;
}

static void write_text(const char *dir, const char *name, const char *text, int append)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, append ? "a" : "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static int read_int_file(const char *dir, const char *name, const char *key, int dflt)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    json_t *j = json_load_file(p, 0, NULL);
    if (!j) return dflt;
    int v = json_is_integer(json_object_get(j, key))
                ? (int)json_integer_value(json_object_get(j, key))
                : dflt;
    json_decref(j);
    return v;
}

/* Sleeps SEC seconds in small steps; returns 1 when SIGTERM arrived. */
static int nap(double sec, int ignore_term)
{
    double end = now() + sec;
    while (now() < end) {
        if (got_term && !ignore_term) return 1;
        double left = end - now();
        if (left > 0.01) left = 0.01;
        if (left > 0) nanosleep(&(struct timespec){0, (long)(left * 1e9)}, NULL);
    }
    return got_term && !ignore_term;
}

/* ---- kill points of the fault campaign ("pause_at", see the top) ---- */
static const char *g_pause_at;   // the rule's pause_at (owned by g_rule), or NULL
static const char *g_pause_file; // its gate file (owned by g_rule), or NULL
static int g_pause_epoch = 1;    // the epoch of "progress", "epoch" and "checkpoint"
static int g_pause_step = 1;     // the progress step of "progress"

/* Writes GATE.at.<pid> (created whole: written, then renamed into place) and
 * waits until GATE exists. Returns 1 when SIGTERM arrived first; exits 9 after 60 s. */
static int pause_wait(const char *gate)
{
    char at[4096], tmp[4096 + 8];
    snprintf(at, sizeof at, "%s.at.%d", gate, (int)getpid());
    snprintf(tmp, sizeof tmp, "%s.tmp", at);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
        rename(tmp, at);
    }
    for (int waited = 0; access(gate, F_OK) != 0; waited++) {
        if (got_term) return 1;
        if (waited > 6000) {
            fprintf(stderr, "fake_worker: %s did not appear within 60 s\n", gate);
            exit(9);
        }
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return 0;
}

/* Kill point AT (of epoch E, progress step S): pauses there when the rule's
 * pause_at names it. Returns 1 when SIGTERM arrived while paused. */
static int pause_point(const char *at, int e, int s)
{
    if (!g_pause_at || !g_pause_file || strcmp(g_pause_at, at)) return 0;
    int per_epoch = !strcmp(at, "progress") || !strcmp(at, "epoch") || !strcmp(at, "checkpoint");
    if (per_epoch && e != g_pause_epoch) return 0;
    if (!strcmp(at, "progress") && s != g_pause_step) return 0;
    return pause_wait(g_pause_file);
}

/* Writes TEXT and a newline as one event line, whatever it holds. */
static void emit_raw(const char *text)
{
    FILE *f = g_burst ? g_burst : stdout;
    fprintf(f, "%s\n", text);
    fflush(f);
}

/* An "epoch" event for epoch E with accuracy A (VAL, when not NULL, as the
 * val_accuracy instead: any JSON value, reference stolen). */
static json_t *epoch_event(int e, double a, double lr, double secs, json_t *val)
{
    json_t *ev = json_pack("{s:s, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "event",
                           "epoch", "epoch", e, "train_loss", 1.0 / (e + 1), "train_accuracy", a,
                           "val_loss", 1 - a, "val_accuracy", a, "val_precision", a, "val_recall",
                           a, "val_f1", a, "lr", lr, "seconds", secs);
    if (val) json_object_set_new(ev, "val_accuracy", val);
    return ev;
}

/* "hostile": the lines that break the contract after epoch E (see above). */
static void emit_hostile(int e, double lr)
{
    emit_raw("\033[2J\033[31mnot an event\033[0m");
    emit(epoch_event(99999, 0.5, lr, 0.01, NULL));
    emit(epoch_event(e, 0.5, lr, 0.01, json_string("abc")));
    emit(json_pack("{s:s, s:i}", "event", "epoch", "epoch", e));
    char pad[601];
    memset(pad, 'x', 600);
    pad[600] = 0;
    emit(json_pack("{s:s, s:s}", "event", "pwned", "pad", pad));
    emit(json_pack("{s:s, s:i, s:i, s:i, s:f, s:f}", "event", "progress", "epoch", e + 1, "step", 9,
                   "steps", 4, "loss", 0.5, "images_per_s", 10.0));
    emit(epoch_event(e, 0.5, lr, 0.01, json_real(2.5)));
}

static int stop_with_checkpoint(const char *out, int last_epoch)
{
    if (g_pause_at && g_pause_file && !strcmp(g_pause_at, "term")) {
        got_term = 0; // the next SIGTERM (or the gate) lets it go on
        pause_wait(g_pause_file);
    }
    char buf[64];
    snprintf(buf, sizeof buf, "{\"epoch\":%d}\n", last_epoch);
    write_text(out, "ckpt.json", buf, 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/ckpt.json", out);
    emit(json_pack("{s:s, s:i, s:s}", "event", "checkpoint", "epoch", last_epoch, "path", path));
    fprintf(stderr, "fake_worker: SIGTERM, stopping after epoch %d\n", last_epoch);
    return 7;
}

static json_t *g_curve; // the rule's "curve" (owned by g_rule), or NULL

static double acc_for(double lr, int epoch)
{
    size_t n = json_array_size(g_curve);
    if (n > 0)
        return json_number_value(
            json_array_get(g_curve, epoch <= (int)n ? (size_t)(epoch - 1) : n - 1));
    double a = 0.9 - 0.1 * fabs(log10(lr) + 2.0) - 0.2 / (epoch + 1);
    return a < 0.05 ? 0.05 : a;
}

static int match(json_t *m, json_t *params, json_t *spec)
{
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        json_t *have =
            !strcmp(k, "trial") ? json_object_get(spec, "trial") : json_object_get(params, k);
        if (!have) return 0;
        if (json_is_number(v) && json_is_number(have)) {
            if (fabs(json_number_value(v) - json_number_value(have)) > 1e-12) return 0;
        } else if (!json_equal(v, have)) {
            return 0;
        }
    }
    return 1;
}

static int cmd_eval(int argc, char **argv)
{
    const char *weights = NULL, *data = NULL;
    for (int i = 2; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--weights"))
            weights = argv[++i];
        else if (!strcmp(argv[i], "--data"))
            data = argv[++i];
    }
    if (!weights || !data || access(weights, R_OK) != 0) {
        fprintf(stderr, "fake_worker eval: bad arguments\n");
        return 2;
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/fake.json", data);
    json_t *cfg = json_load_file(p, 0, NULL);
    double acc = 0.5, secs = 0;
    char pause_at[16] = "", gate[4096] = "";
    if (cfg && json_is_string(json_object_get(cfg, "eval_pause_at")) &&
        json_is_string(json_object_get(cfg, "eval_pause_file"))) {
        snprintf(pause_at, sizeof pause_at, "%s",
                 json_string_value(json_object_get(cfg, "eval_pause_at")));
        snprintf(gate, sizeof gate, "%s",
                 json_string_value(json_object_get(cfg, "eval_pause_file")));
    }
    if (cfg && json_is_number(json_object_get(cfg, "test_accuracy")))
        acc = json_number_value(json_object_get(cfg, "test_accuracy"));
    if (cfg && json_is_number(json_object_get(cfg, "eval_sleep")))
        secs = json_number_value(json_object_get(cfg, "eval_sleep"));
    json_int_t code = cfg ? json_integer_value(json_object_get(cfg, "eval_exit")) : 0;
    if (code) {
        const char *m = json_string_value(json_object_get(cfg, "eval_message"));
        emit(json_pack("{s:s, s:s, s:s}", "event", "error", "code", "data_error", "message",
                       m ? m : "fake evaluation failure"));
        json_decref(cfg);
        return (int)code;
    }
    json_decref(cfg);
    if (!strcmp(pause_at, "eval")) pause_wait(gate);
    if (secs > 0)
        nanosleep(&(struct timespec){(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)},
                  NULL);
    /* One line per evaluation that ran to its end. */
    snprintf(p, sizeof p, "%s/evals", data);
    FILE *f = fopen(p, "a");
    if (f) {
        fprintf(f, "%s\n", weights);
        fclose(f);
    }
    printf("{\"loss\":0.5,\"accuracy\":%.17g,\"macro_f1\":0.5}\n", acc);
    fflush(stdout);
    if (!strcmp(pause_at, "result")) pause_wait(gate);
    return 0;
}

int main(int argc, char **argv)
{
    t0 = now();
    if (argc >= 2 && !strcmp(argv[1], "eval")) return cmd_eval(argc, argv);
    /* sweepd passes `--blas-core POLICY` after the spec; echoed in "start". */
    const char *blas = argc == 5 && !strcmp(argv[3], "--blas-core") ? argv[4] : NULL;
    if ((argc != 3 && !blas) || strcmp(argv[1], "run")) {
        fprintf(stderr, "usage: fake_worker run TRIAL.json [--blas-core P] | eval --weights F "
                        "--data D\n");
        return 2;
    }
    atexit(cleanup);
    json_error_t jerr;
    json_t *spec = g_spec = json_load_file(argv[2], 0, &jerr);
    if (!spec) {
        fprintf(stderr, "fake_worker: %s: %s\n", argv[2], jerr.text);
        return 2;
    }
    json_t *params = json_object_get(spec, "params");
    const char *out = json_string_value(json_object_get(spec, "out_dir"));
    const char *train = json_string_value(json_object_get(json_object_get(spec, "data"), "train"));
    if (!out || !train || !json_is_object(params)) {
        fprintf(stderr, "fake_worker: trial spec lacks out_dir, data.train or params\n");
        return 2;
    }
    /* The script. */
    char p[4096];
    snprintf(p, sizeof p, "%s/fake.json", train);
    json_t *cfg = g_cfg = json_load_file(p, 0, NULL);
    json_t *rule = g_rule = json_object();
    if (cfg && json_is_object(json_object_get(cfg, "default")))
        json_object_update(rule, json_object_get(cfg, "default"));
    size_t i;
    json_t *r;
    json_array_foreach(cfg ? json_object_get(cfg, "rules") : NULL, i, r)
    {
        if (match(json_object_get(r, "match"), params, spec)) {
            json_object_update(rule, r);
            break;
        }
    }
    const char *action = json_string_value(json_object_get(rule, "action"));
    if (!action) action = "ok";
    if (getenv("FAKE_NOOP") && !strcmp(getenv("FAKE_NOOP"), "1")) action = "noop";
    double sleep_s = json_is_number(json_object_get(rule, "sleep"))
                         ? json_number_value(json_object_get(rule, "sleep"))
                         : 0.02;
    int epochs = (int)json_integer_value(json_object_get(params, "epochs"));
    if (json_is_integer(json_object_get(rule, "epochs")))
        epochs = (int)json_integer_value(json_object_get(rule, "epochs"));
    if (epochs < 1) epochs = 1;
    int progress = json_is_integer(json_object_get(rule, "progress"))
                       ? (int)json_integer_value(json_object_get(rule, "progress"))
                       : 1;
    int at_epoch = json_is_integer(json_object_get(rule, "at_epoch"))
                       ? (int)json_integer_value(json_object_get(rule, "at_epoch"))
                       : 1;
    int ignore_term = json_is_true(json_object_get(rule, "ignore_term"));
    g_pause_at = json_string_value(json_object_get(rule, "pause_at"));
    g_pause_file = json_string_value(json_object_get(rule, "pause_file"));
    if (json_is_integer(json_object_get(rule, "pause_epoch")))
        g_pause_epoch = (int)json_integer_value(json_object_get(rule, "pause_epoch"));
    if (json_is_integer(json_object_get(rule, "pause_step")))
        g_pause_step = (int)json_integer_value(json_object_get(rule, "pause_step"));
    g_curve = json_object_get(rule, "curve");
    double lr = json_number_value(json_object_get(params, "lr"));
    json_int_t trial = json_integer_value(json_object_get(spec, "trial"));

    if (!strcmp(action, "noop")) {
        emit(json_pack("{s:s, s:I, s:O, s:i, s:i, s:i}", "event", "start", "trial", trial, "params",
                       params, "train_images", 10, "val_images", 2, "classes", 2));
        double a = acc_for(lr, 1);
        emit(epoch_event(1, a, lr, 0.0, NULL));
        emit(json_pack("{s:s, s:i, s:f, s:f, s:f, s:f, s:f}", "event", "done", "best_epoch", 1,
                       "val_accuracy", a, "val_loss", 1 - a, "val_precision", a, "val_recall", a,
                       "val_f1", a));
        return 0;
    }

    const char *gate = json_string_value(json_object_get(rule, "wait_file"));
    if (gate) {
        int waited = 0;
        while (access(gate, F_OK) != 0) {
            if (waited++ > 6000) {
                fprintf(stderr, "fake_worker: %s did not appear within 60 s\n", gate);
                return 9;
            }
            nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ignore_term ? SIG_IGN : on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int starts = read_int_file(out, "fake_starts", "n", 0);
    char buf[256];
    snprintf(buf, sizeof buf, "{\"n\":%d}\n", starts + 1);
    write_text(out, "fake_starts", buf, 0);
    int fail_attempts = json_is_integer(json_object_get(rule, "fail_attempts"))
                            ? (int)json_integer_value(json_object_get(rule, "fail_attempts"))
                            : 1 << 30;
    if (starts >= fail_attempts) action = "ok";

    int resume = read_int_file(out, "ckpt.json", "epoch", 0);
    fprintf(stderr, "fake_worker: trial %lld start %d, action %s, resume after epoch %d\n",
            (long long)trial, starts + 1, action, resume);
    json_t *st = json_pack("{s:s, s:I, s:O, s:i, s:i, s:i}", "event", "start", "trial", trial,
                           "params", params, "train_images", 100, "val_images", 20, "classes", 2);
    if (pause_point("before_start", 0, 0)) {
        json_decref(st);
        return stop_with_checkpoint(out, resume);
    }
    if (resume)
        json_object_set_new(st, "resumed", json_pack("{s:i, s:i}", "epoch", resume, "step", 0));
    if (blas) json_object_set_new(st, "blas_core", json_string(blas));
    static const char *const counts[] = {"skipped_files", "bad_images"};
    for (int i = 0; i < 2; i++)
        if (json_is_integer(json_object_get(rule, counts[i])))
            json_object_set(st, counts[i], json_object_get(rule, counts[i]));
    int burst = !strcmp(action, "burst");
    if (burst) {
        int apart = json_is_true(json_object_get(rule, "burst_apart"));
        if (apart) emit(st);
        if (nap(sleep_s, ignore_term)) {
            if (!apart) json_decref(st);
            return stop_with_checkpoint(out, resume);
        }
        burst_begin();
        if (!apart) emit(st);
    } else {
        emit(st);
        if (pause_point("start", 0, 0)) return stop_with_checkpoint(out, resume);
    }

    int best_epoch = 0;
    double best = -1;
    for (int e = resume + 1; e <= epochs; e++) {
        if (e == at_epoch || (e > at_epoch && resume >= at_epoch && e == resume + 1)) {
            if (!strcmp(action, "exit")) {
                int code = json_is_integer(json_object_get(rule, "code"))
                               ? (int)json_integer_value(json_object_get(rule, "code"))
                               : 3;
                const char *m = json_string_value(json_object_get(rule, "message"));
                emit(json_pack("{s:s, s:s, s:s}", "event", "error", "code",
                               code == 3 ? "data" : "other", "message",
                               m ? m : "scripted failure"));
                return code;
            }
            if (!strcmp(action, "crash")) {
                fprintf(stderr, "fake_worker: crashing as scripted\n");
                fflush(stderr);
                signal(SIGABRT, SIG_DFL);
                abort();
            }
            if (!strcmp(action, "hang")) {
                for (;;) {
                    if (nap(0.05, ignore_term)) return stop_with_checkpoint(out, e - 1);
                }
            }
            if (!strcmp(action, "flood")) {
                for (int k = 0; k < 2000; k++)
                    printf("this is not json %d\n", k);
                printf("{\"event\":\"progress\",\"broken\":");
                for (int k = 0; k < 3 * 1024 * 1024 / 64; k++)
                    printf("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
                printf("\n");
                fflush(stdout);
            }
        }
        for (int s = 1; s <= progress; s++) {
            if (!burst && nap(sleep_s / progress, ignore_term))
                return stop_with_checkpoint(out, e - 1);
            emit(json_pack("{s:s, s:i, s:i, s:i, s:f, s:f}", "event", "progress", "epoch", e,
                           "step", s, "steps", progress, "loss", 1.0 / (e + s), "images_per_s",
                           1000.0));
            if (pause_point("progress", e, s)) return stop_with_checkpoint(out, e - 1);
        }
        double a = acc_for(lr, e);
        emit(epoch_event(e, a, lr, sleep_s, NULL));
        if (pause_point("epoch", e, 0)) return stop_with_checkpoint(out, e - 1);
        if (a > best) {
            best = a;
            best_epoch = e;
        }
        snprintf(buf, sizeof buf, "{\"epoch\":%d}\n", e);
        write_text(out, "ckpt.json", buf, 0);
        snprintf(p, sizeof p, "%s/ckpt.json", out);
        emit(json_pack("{s:s, s:i, s:s}", "event", "checkpoint", "epoch", e, "path", p));
        if (pause_point("checkpoint", e, 0)) return stop_with_checkpoint(out, e);
        if (!strcmp(action, "hostile") && e == at_epoch) {
            int n = json_is_integer(json_object_get(rule, "hostile_repeat"))
                        ? (int)json_integer_value(json_object_get(rule, "hostile_repeat"))
                        : 1;
            for (int k = 0; k < n; k++)
                emit_hostile(e, lr);
            if (json_is_true(json_object_get(rule, "hostile_done")))
                emit(json_pack("{s:s, s:i, s:f, s:f, s:f, s:f, s:f}", "event", "done", "best_epoch",
                               1, "val_accuracy", 0.99, "val_loss", 0.01, "val_precision", 0.99,
                               "val_recall", 0.99, "val_f1", 0.99));
            if (json_is_true(json_object_get(rule, "hostile_exit"))) return 0;
        }
    }
    if (best < 0) { // resumed after the last epoch
        best_epoch = epochs;
        best = acc_for(lr, epochs);
    }
    write_text(out, "best.safetensors", "fake weights\n", 0);
    snprintf(buf, sizeof buf, "done at %.3f\n", now());
    write_text(out, "completions", buf, 1);
    emit(json_pack("{s:s, s:i, s:f, s:f, s:f, s:f, s:f}", "event", "done", "best_epoch", best_epoch,
                   "val_accuracy", best, "val_loss", 1 - best, "val_precision", best, "val_recall",
                   best, "val_f1", best));
    burst_end();
    pause_point("done", 0, 0); // the work is done: SIGTERM here ends it with 0
    return 0;
}
