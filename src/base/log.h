/* log.h: one line per event, `key=value` form, to stderr (syslog later). */
#ifndef SIPSD_BASE_LOG_H
#define SIPSD_BASE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Send lines to syslog(3) (facility daemon, tag "sipsd") instead of
 * standard error. */
void log_use_syslog(bool on);

/* Set the most verbose level printed (default LOG_LVL_INFO). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Print `level=... event=EVENT <fmt...>` as one line. `event` is a short
 * dotted name (`tls.handshake`, `sip.parse_error`); fmt continues with more
 * `key=value` pairs. Thread-safe: one write(2) per line. */
void log_event(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A token bucket for peer-triggered log lines: allows `burst` lines, then
 * one per `interval_ms`. Returns 1 to log, 0 to drop (and counts drops). */
struct log_ratelimit {
	uint64_t last_ms;
	uint32_t tokens;
	uint32_t burst;
	uint32_t interval_ms;
	uint64_t dropped;
};

#define LOG_RATELIMIT_INIT(burst, interval) {0, (burst), (burst), (interval), 0}

int log_ratelimit_allow(struct log_ratelimit *rl);

#define LOG_ERROR(ev, ...) log_event(LOG_LVL_ERROR, ev, __VA_ARGS__)
#define LOG_WARN(ev, ...) log_event(LOG_LVL_WARN, ev, __VA_ARGS__)
#define LOG_INFO(ev, ...) log_event(LOG_LVL_INFO, ev, __VA_ARGS__)
#define LOG_DEBUG(ev, ...)                                                                         \
	do {                                                                                       \
		if (log_get_level() >= LOG_LVL_DEBUG)                                              \
			log_event(LOG_LVL_DEBUG, ev, __VA_ARGS__);                                 \
	} while (0)

#endif
