/* The process-wide logger: destinations, type mask, Mosquitto's timestamped line format. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#define LOG_LINE_MAX 1024

unsigned log_enabled_types = LOG_TYPE_DEFAULT;

/* Everything below is written by log_open/log_close/log_reopen under `lock` and read by
 * writers under the same lock (a line is formatted before taking it). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned dests = CONFIG_LOG_DEST_STDERR;
static int file_fd = -1;
static char *file_path;
static bool timestamp = true;
static char *timestamp_format;
static bool syslog_open;

static const struct {
    const char *word;
    unsigned bits;
} type_words[] = {
    {"debug", LOG_TYPE_DEBUG},
    {"error", LOG_TYPE_ERROR},
    {"warning", LOG_TYPE_WARNING},
    {"notice", LOG_TYPE_NOTICE},
    {"information", LOG_TYPE_INFORMATION},
    {"subscribe", LOG_TYPE_SUBSCRIBE},
    {"unsubscribe", LOG_TYPE_UNSUBSCRIBE},
    {"websockets", LOG_TYPE_WEBSOCKETS},
    {"all", LOG_TYPE_ALL},
    {"none", LOG_TYPE_NONE},
};

int log_type_parse(const char *word, unsigned *out_bits)
{
    for (size_t i = 0; i < sizeof type_words / sizeof type_words[0]; i++) {
        if (strcmp(word, type_words[i].word) == 0) {
            *out_bits = type_words[i].bits;
            return 0;
        }
    }
    return -EINVAL;
}

static int open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int log_open(const struct config *cfg)
{
    int fd = -1;
    char *path = NULL, *fmt = NULL;
    if ((cfg->log_dest & CONFIG_LOG_DEST_FILE) && cfg->log_file != NULL) {
        if ((path = strdup(cfg->log_file)) == NULL) return -ENOMEM;
        fd = open_file(path);
        if (fd < 0) {
            free(path);
            return fd;
        }
    }
    if (cfg->log_timestamp_format != NULL && (fmt = strdup(cfg->log_timestamp_format)) == NULL) {
        if (fd >= 0) close(fd);
        free(path);
        return -ENOMEM;
    }
    pthread_mutex_lock(&lock);
    if (file_fd >= 0) close(file_fd);
    free(file_path);
    free(timestamp_format);
    file_fd = fd;
    file_path = path;
    timestamp_format = fmt;
    timestamp = cfg->log_timestamp;
    dests = cfg->log_dest;
    if (syslog_open) {
        closelog();
        syslog_open = false;
    }
    if (dests & CONFIG_LOG_DEST_SYSLOG) {
        int facility = cfg->log_facility >= 0 ? (16 + cfg->log_facility) << 3 : LOG_DAEMON;
        openlog("starling", LOG_PID | LOG_NDELAY, facility);
        syslog_open = true;
    }
    /* With no destination at all, nothing is even formatted. */
    __atomic_store_n(&log_enabled_types, dests != 0 ? cfg->log_types : 0u, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&lock);
    return 0;
}

void log_close(void)
{
    pthread_mutex_lock(&lock);
    if (file_fd >= 0) close(file_fd);
    file_fd = -1;
    free(file_path);
    file_path = NULL;
    free(timestamp_format);
    timestamp_format = NULL;
    timestamp = true;
    if (syslog_open) closelog();
    syslog_open = false;
    dests = CONFIG_LOG_DEST_STDERR;
    __atomic_store_n(&log_enabled_types, LOG_TYPE_DEFAULT, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&lock);
}

int log_reopen(void)
{
    int rc = 0;
    pthread_mutex_lock(&lock);
    if (file_path != NULL) {
        int fd = open_file(file_path);
        if (fd < 0) {
            rc = fd;
        } else {
            if (file_fd >= 0) close(file_fd);
            file_fd = fd;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

/* Caller holds `lock`. */
static int format_timestamp_locked(char *buf, int len)
{
    time_t now = time(NULL);
    int n;
    if (len <= 0) return 0;
    buf[0] = '\0';
    if (!timestamp) return 0;
    if (timestamp_format != NULL) {
        struct tm tm;
        localtime_r(&now, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        /* log_timestamp_format is the user's strftime format, by design. */
        size_t w = strftime(buf, (size_t)len, timestamp_format, &tm);
#pragma GCC diagnostic pop
        if (w == 0 || w + 2 >= (size_t)len) return (int)w;
        buf[w] = ':';
        buf[w + 1] = ' ';
        buf[w + 2] = '\0';
        return (int)w + 2;
    }
    n = snprintf(buf, (size_t)len, "%lld: ", (long long)now);
    return n < len ? n : len - 1;
}

int log_format_timestamp(char *buf, int len)
{
    pthread_mutex_lock(&lock);
    int n = format_timestamp_locked(buf, len);
    pthread_mutex_unlock(&lock);
    return n;
}

static int syslog_priority(unsigned type)
{
    switch (type) {
    case LOG_TYPE_ERROR:
        return LOG_ERR;
    case LOG_TYPE_WARNING:
        return LOG_WARNING;
    case LOG_TYPE_NOTICE:
        return LOG_NOTICE;
    case LOG_TYPE_DEBUG:
        return LOG_DEBUG;
    default:
        return LOG_INFO;
    }
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        buf += w;
        len -= (size_t)w;
    }
}

/* Writes one preformatted message to every destination. */
static void emit(unsigned type, const char *msg)
{
    char line[LOG_LINE_MAX + 128];
    pthread_mutex_lock(&lock);
    int n = format_timestamp_locked(line, 96);
    int m = snprintf(line + n, sizeof line - (size_t)n - 1, "%s", msg);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    line[len] = '\0';
    if (dests & CONFIG_LOG_DEST_STDOUT) write_all(STDOUT_FILENO, line, len);
    if (dests & CONFIG_LOG_DEST_STDERR) write_all(STDERR_FILENO, line, len);
    if ((dests & CONFIG_LOG_DEST_FILE) && file_fd >= 0) write_all(file_fd, line, len);
    if (dests & CONFIG_LOG_DEST_SYSLOG) syslog(syslog_priority(type), "%s", msg);
    pthread_mutex_unlock(&lock);
}

void log_vat(unsigned type, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX + 1];
    if (!log_is_enabled(type)) return;
    vsnprintf(msg, sizeof msg, fmt, ap);
    emit(type, msg);
}

void log_at(unsigned type, const char *fmt, ...)
{
    va_list ap;
    if (!log_is_enabled(type)) return;
    va_start(ap, fmt);
    log_vat(type, fmt, ap);
    va_end(ap);
}

void log_sink_cb(void *data, int type, const char *message)
{
    (void)data;
    if (type > 0 && log_is_enabled((unsigned)type)) emit((unsigned)type, message);
}
