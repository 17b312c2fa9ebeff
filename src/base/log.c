/* log.c: key=value event lines on stderr. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static volatile enum log_level current_level = LOG_LVL_INFO;
static volatile bool to_syslog;

void log_use_syslog(bool on)
{
	if (on && !to_syslog)
		openlog("sipsd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	to_syslog = on;
}

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

static const char *level_names[] = {"error", "warn", "info", "debug"};

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	if (level > current_level)
		return;
	char line[2048];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], event);
	if (n < 0)
		return;
	if (fmt && *fmt && (size_t)n < sizeof(line) - 2) {
		line[n++] = ' ';
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
		va_end(ap);
		if (m > 0)
			n += m;
	}
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	if (to_syslog) {
		static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
		line[n] = '\0';
		/* syslog stamps the time itself: skip our ts= field. */
		const char *text = strchr(line, ' ');
		syslog(prio[level], "%s", text ? text + 1 : line);
		return;
	}
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int log_ratelimit_allow(struct log_ratelimit *rl)
{
	uint64_t now = now_ms();
	if (rl->interval_ms && now > rl->last_ms) {
		uint64_t refill = (now - rl->last_ms) / rl->interval_ms;
		if (refill) {
			uint64_t t = rl->tokens + refill;
			rl->tokens = (uint32_t)(t > rl->burst ? rl->burst : t);
			rl->last_ms = now;
		}
	}
	if (rl->tokens == 0) {
		rl->dropped++;
		return 0;
	}
	rl->tokens--;
	return 1;
}
