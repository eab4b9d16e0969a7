/* Tests of broker/log.c: type filtering before formatting, line format, destinations. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "mem.h"
#include "testlib.h"

static char path[256];
static const char *dir;

static int setup(void **state)
{
    (void)state;
    dir = test_mkdtemp();
    if (dir == NULL) return -1;
    snprintf(path, sizeof path, "%s/starling.log", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_close();
    test_rmdir(dir);
    return 0;
}

/* Opens the logger on a fresh file with the given settings. */
static void open_file_log(unsigned types, bool timestamp, const char *format)
{
    struct config c;
    remove(path);
    assert_int_equal(config_defaults(&c), 0);
    c.log_dest = CONFIG_LOG_DEST_FILE;
    c.log_file = mem_strndup(path, strlen(path));
    c.log_types = types;
    c.log_timestamp = timestamp;
    if (format != NULL) c.log_timestamp_format = mem_strndup(format, strlen(format));
    assert_int_equal(log_open(&c), 0);
    config_free(&c);
}

static char *read_log(void)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f != NULL) {
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

/* log_at writes only enabled types, and checks the type before formatting: a disabled line
 * with an invalid string pointer is never formatted (formatting it would crash). */
static void filters_by_type(void **state)
{
    (void)state;
    open_file_log(LOG_TYPE_ERROR | LOG_TYPE_NOTICE, false, NULL);
    assert_true(log_is_enabled(LOG_TYPE_ERROR));
    assert_false(log_is_enabled(LOG_TYPE_DEBUG));
    log_at(LOG_TYPE_DEBUG, "debug %s", (const char *)(uintptr_t)8);
    log_at(LOG_TYPE_ERROR, "error %d", 1);
    log_at(LOG_TYPE_INFORMATION, "info");
    log_at(LOG_TYPE_NOTICE, "notice %s", "n");
    assert_string_equal(read_log(), "error 1\nnotice n\n");
}

/* The default timestamp is seconds since the epoch followed by ": ", as Mosquitto writes. */
static void epoch_timestamp(void **state)
{
    (void)state;
    open_file_log(LOG_TYPE_ALL, true, NULL);
    time_t before = time(NULL);
    log_at(LOG_TYPE_NOTICE, "hello");
    time_t after = time(NULL);
    char *line = read_log();
    char *end;
    long long ts = strtoll(line, &end, 10);
    assert_true(ts >= before && ts <= after);
    assert_string_equal(end, ": hello\n");
}

/* log_timestamp_format is an strftime format. */
static void strftime_timestamp(void **state)
{
    (void)state;
    open_file_log(LOG_TYPE_ALL, true, "[%Y]");
    log_at(LOG_TYPE_WARNING, "w");
    char expect[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    snprintf(expect, sizeof expect, "[%d]: w\n", tm.tm_year + 1900);
    assert_string_equal(read_log(), expect);
    char buf[64];
    int n = log_format_timestamp(buf, sizeof buf);
    assert_int_equal(n, (int)strlen(buf));
    assert_int_equal(strncmp(buf, expect, 8), 0);
}

/* Long messages are cut at 1024 bytes, still one line. */
static void long_line_truncated(void **state)
{
    (void)state;
    open_file_log(LOG_TYPE_ALL, false, NULL);
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_at(LOG_TYPE_NOTICE, "%s", big);
    char *line = read_log();
    assert_int_equal(strlen(line), 1025);
    assert_int_equal(line[1024], '\n');
}

/* The sink for other modules respects the type mask. */
static void sink(void **state)
{
    (void)state;
    open_file_log(LOG_TYPE_WARNING, false, NULL);
    log_sink_cb(NULL, LOG_TYPE_WARNING, "from cluster");
    log_sink_cb(NULL, LOG_TYPE_DEBUG, "dropped");
    assert_string_equal(read_log(), "from cluster\n");
}

/* log_reopen opens the file again after it was moved away (log rotation on SIGHUP). */
static void reopen(void **state)
{
    char moved[300];
    (void)state;
    open_file_log(LOG_TYPE_ALL, false, NULL);
    log_at(LOG_TYPE_NOTICE, "one");
    snprintf(moved, sizeof moved, "%s.1", path);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(log_reopen(), 0);
    log_at(LOG_TYPE_NOTICE, "two");
    assert_string_equal(read_log(), "two\n");
    remove(moved);
}

/* A log file that cannot be opened is an error and changes nothing. */
static void open_failure(void **state)
{
    struct config c;
    (void)state;
    assert_int_equal(config_defaults(&c), 0);
    c.log_dest = CONFIG_LOG_DEST_FILE;
    c.log_file = mem_strndup("/nonexistent/dir/x.log", 22);
    assert_int_equal(log_open(&c), -ENOENT);
    config_free(&c);
}

/* log_dest none turns every type off, so nothing is formatted. */
static void dest_none(void **state)
{
    struct config c;
    (void)state;
    assert_int_equal(config_defaults(&c), 0);
    c.log_dest = CONFIG_LOG_DEST_NONE;
    c.log_types = LOG_TYPE_ALL;
    assert_int_equal(log_open(&c), 0);
    config_free(&c);
    assert_false(log_is_enabled(LOG_TYPE_ERROR));
    log_at(LOG_TYPE_ERROR, "%s", (const char *)(uintptr_t)8); /* would crash if formatted */
}

/* log_type words. */
static void type_words(void **state)
{
    unsigned bits;
    (void)state;
    assert_int_equal(log_type_parse("debug", &bits), 0);
    assert_int_equal(bits, LOG_TYPE_DEBUG);
    assert_int_equal(log_type_parse("information", &bits), 0);
    assert_int_equal(bits, LOG_TYPE_INFORMATION);
    assert_int_equal(log_type_parse("websockets", &bits), 0);
    assert_int_equal(bits, LOG_TYPE_WEBSOCKETS);
    assert_int_equal(log_type_parse("all", &bits), 0);
    assert_int_equal(bits, LOG_TYPE_ALL);
    assert_int_equal(log_type_parse("none", &bits), 0);
    assert_int_equal(bits, 0);
    assert_int_equal(log_type_parse("info", &bits), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(filters_by_type),
        cmocka_unit_test(epoch_timestamp),
        cmocka_unit_test(strftime_timestamp),
        cmocka_unit_test(long_line_truncated),
        cmocka_unit_test(sink),
        cmocka_unit_test(reopen),
        cmocka_unit_test(open_failure),
        cmocka_unit_test(dest_none),
        cmocka_unit_test(type_words),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
