/* The broker's log: one process-wide logger configured from log_dest, log_type,
 * log_timestamp and log_timestamp_format, with Mosquitto's line format
 * ("<timestamp>: <message>").
 *
 * Contract:
 * - log_open() is called once at start-up (and again to reconfigure) from the main thread
 *   before other threads log; log_close() at exit.
 * - log_at() may be called from any thread: each line is formatted into a local buffer and
 *   written with one write per destination. It checks the type against log_type before
 *   formatting anything, so a disabled debug line costs one load and one test.
 * - Before log_open() (and after log_close()) lines of type error, warning, notice and
 *   information go to stderr with a seconds timestamp, so that config errors are visible.
 * - Never log payloads, passwords or keys.
 */
#ifndef STARLING_BROKER_LOG_H
#define STARLING_BROKER_LOG_H

#include <stdarg.h>
#include <stdbool.h>

struct config;

/* Bits of log_type; the values are Mosquitto's MOSQ_LOG_* values. */
enum log_type {
    LOG_TYPE_NONE = 0,
    LOG_TYPE_INFORMATION = 0x01,
    LOG_TYPE_NOTICE = 0x02,
    LOG_TYPE_WARNING = 0x04,
    LOG_TYPE_ERROR = 0x08,
    LOG_TYPE_DEBUG = 0x10,
    LOG_TYPE_SUBSCRIBE = 0x20,
    LOG_TYPE_UNSUBSCRIBE = 0x40,
    LOG_TYPE_WEBSOCKETS = 0x80,
    LOG_TYPE_ALL = 0xFF,
    /* Mosquitto's default: error, warning, notice, information. */
    LOG_TYPE_DEFAULT = LOG_TYPE_ERROR | LOG_TYPE_WARNING | LOG_TYPE_NOTICE | LOG_TYPE_INFORMATION,
};

/* The mask of enabled types (read by log_is_enabled; written only by log_open/log_close). */
extern unsigned log_enabled_types;

/* Opens the destinations cfg names (log_dest file is opened in append mode) and takes its
 * log_types, timestamp settings and syslog facility. Returns 0, or a negative errno when the
 * log file cannot be opened (nothing changes then). cfg is borrowed: its values are copied. */
int log_open(const struct config *cfg);

/* Closes the file and syslog; the logger falls back to stderr as before log_open(). */
void log_close(void);

/* Re-opens the log file (for log rotation on SIGHUP). Returns 0 or a negative errno. */
int log_reopen(void);

/* Whether lines of this type are written. */
static inline bool log_is_enabled(unsigned type)
{
    return (log_enabled_types & type) != 0;
}

/* Writes one line of the given type (one LOG_TYPE_* bit) if it is enabled. A trailing newline
 * is added; the message is truncated at 1024 bytes. */
void log_at(unsigned type, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vat(unsigned type, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* A sink with a generic shape for modules that cannot include this header (cluster/ logs
 * through a function pointer the broker hands it): `data` is ignored, `type` is a LOG_TYPE_*
 * bit, `message` a preformatted line without newline. Thread-safe like log_at(). */
void log_sink_cb(void *data, int type, const char *message);

/* Parses one log_type word ("debug", ..., "all", "none") into its bits. Returns 0 or -EINVAL. */
int log_type_parse(const char *word, unsigned *out_bits /* OUT */);

/* The formatted timestamp prefix of a line written now, e.g. "1700000000: " (for tests and
 * for $SYS/broker/log). Writes at most len bytes including the NUL; returns the length. */
int log_format_timestamp(char *buf, int len);

#endif
