/* timeutil — monotonic seconds and ISO-8601 UTC timestamps. */
#ifndef SWEEP_TIMEUTIL_H
#define SWEEP_TIMEUTIL_H

#include <stddef.h>
#include <time.h>

/* Seconds from an arbitrary fixed point (CLOCK_MONOTONIC), for durations. */
double time_mono(void);
/* Wall-clock seconds since the epoch, with sub-second precision. */
double time_wall(void);
/* Formats T (seconds since the epoch) as "2026-11-28T15:04:05.123Z" into BUF
 * (at least 32 bytes). Returns BUF. */
char *time_iso8601(char *buf, size_t n, double t);
/* The current time, formatted as time_iso8601. */
char *time_now_iso(char *buf, size_t n);
/* Parses the format above (milliseconds optional); 0 or ERR_PARSE. */
int time_parse_iso8601(const char *s, double *out);

#endif
