/* Tests of broker/config.c: defaults, every directive, every error form, include_dir, listeners
 * and the command line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "mem.h"
#include "testlib.h"

static char err[512];

static int load(const char *text, const struct config_args *args, struct config *cfg)
{
    return config_load_buffer("t.conf", text, strlen(text), args, cfg, err, sizeof err);
}

/* Loads text that must be valid. */
static void load_ok(const char *text, struct config *cfg)
{
    int rc = load(text, NULL, cfg);
    if (rc != 0) fail_msg("unexpected error %d: %s", rc, err);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* With no file and no -p, the broker is in local-only mode on 127.0.0.1 and ::1 port 1883
 * with anonymous clients allowed, and every value is Mosquitto's default. */
static void defaults_without_file(void **state)
{
    struct config c;
    (void)state;
    assert_int_equal(config_load(NULL, NULL, &c, err, sizeof err), 0);
    assert_true(c.local_only);
    assert_int_equal(c.listener_count, 2);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");
    assert_string_equal(c.listeners[1].bind_address, "::1");
    for (int i = 0; i < 2; i++) {
        const struct config_listener *l = &c.listeners[i];
        assert_string_equal(l->file, "<default>");
        assert_int_equal(l->port, 1883);
        assert_true(l->local_only);
        assert_true(l->security.allow_anonymous);
        assert_true(l->security.allow_zero_length_clientid);
        assert_string_equal(l->security.auto_id_prefix, "auto-");
        assert_null(l->security.password_file);
        assert_null(l->security.acl_file);
        assert_int_equal(l->max_connections, -1);
        assert_int_equal(l->max_qos, 2);
        assert_int_equal(l->max_topic_alias, 10);
        assert_int_equal(l->protocol, CONFIG_PROTOCOL_MQTT);
        assert_int_equal(l->socket_domain, CONFIG_SOCKET_DOMAIN_ANY);
    }
    assert_false(c.per_listener_settings);
    assert_true(c.persistence);
    assert_string_equal(c.persistence_location, "./starling-data");
    assert_string_equal(c.persistence_file, "mosquitto.db");
    assert_int_equal(c.autosave_interval_s, 1800);
    assert_int_equal(c.log_dest, CONFIG_LOG_DEST_STDERR);
    assert_null(c.log_file);
    assert_int_equal(c.log_types, LOG_TYPE_DEFAULT);
    assert_int_equal(c.log_facility, -1);
    assert_true(c.connection_messages);
    assert_true(c.log_timestamp);
    assert_null(c.log_timestamp_format);
    assert_int_equal(c.max_inflight_messages, 20);
    assert_int_equal(c.max_inflight_bytes, 0);
    assert_int_equal(c.max_queued_messages, 1000);
    assert_int_equal(c.max_queued_bytes, 0);
    assert_false(c.queue_qos0_messages);
    assert_int_equal(c.message_size_limit, 0);
    assert_int_equal(c.max_packet_size, 0);
    assert_int_equal(c.max_keepalive, 65535);
    assert_int_equal(c.persistent_client_expiration_s, 0);
    assert_true(c.retain_available);
    assert_int_equal(c.max_qos, 2);
    assert_false(c.upgrade_outgoing_qos);
    assert_int_equal(c.sys_interval_s, 10);
    assert_null(c.pid_file);
    assert_string_equal(c.user, "mosquitto");
    assert_false(c.daemon);
    assert_false(c.verbose);
    assert_int_equal(c.node_id, 1);
    assert_false(c.node_id_set);
    assert_false(c.admin_listener_set);
    assert_int_equal(c.admin_port, 8088);
    assert_string_equal(c.admin_bind_address, "127.0.0.1");
    assert_null(c.admin_token_file);
    assert_null(c.admin_token);
    assert_false(c.cluster_listen_set);
    assert_int_equal(c.cluster_port, 7700);
    assert_null(c.cluster_bind_address);
    assert_false(c.cluster_advertise_set);
    assert_non_null(c.cluster_advertise_host); /* the host name */
    assert_int_equal(c.cluster_advertise_port, 7700);
    assert_int_equal(c.cluster_peer_count, 0);
    assert_null(c.cluster_join_host);
    assert_null(c.cluster_secret_file);
    assert_false(config_is_clustered(&c));
    assert_null(c.config_file);
    config_free(&c);
}

/* config_defaults() alone gives the same global values and no listener. */
static void defaults_function(void **state)
{
    struct config c;
    (void)state;
    assert_int_equal(config_defaults(&c), 0);
    assert_int_equal(c.listener_count, 0);
    assert_true(c.persistence);
    assert_string_equal(c.persistence_location, "./starling-data");
    assert_int_equal(c.max_inflight_messages, 20);
    assert_int_equal(c.max_queued_messages, 1000);
    assert_int_equal(c.node_id, 1);
    assert_string_equal(c.security.auto_id_prefix, "auto-");
    config_free(&c);
    config_free(&c); /* zeroed: a no-op */
}

/* Every directive with a value other than its default lands in its field. */
static void every_directive_set(void **state)
{
    struct config c;
    (void)state;
    load_ok("# a comment\n"
            "\n"
            "   \n"
            "allow_anonymous true\n"
            "allow_zero_length_clientid false\n"
            "auto_id_prefix gen-\n"
            "password_file /etc/starling/passwd\n"
            "acl_file /etc/starling/acl file\n"
            "persistence false\n"
            "persistence_location /var/lib/starling\n"
            "persistence_file x.db\n"
            "autosave_interval 60\n"
            "autosave_on_changes true\n"
            "log_dest stdout\n"
            "log_dest file /var/log/starling.log\n"
            "log_dest syslog\n"
            "log_type error\n"
            "log_type subscribe\n"
            "log_facility 3\n"
            "connection_messages false\n"
            "log_timestamp false\n"
            "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
            "max_inflight_messages 5\n"
            "max_inflight_bytes 1000\n"
            "max_queued_messages 7\n"
            "max_queued_bytes 123456789012\n"
            "queue_qos0_messages true\n"
            "message_size_limit 1000\n"
            "max_packet_size 2000\n"
            "max_keepalive 30\n"
            "persistent_client_expiration 2d\n"
            "retain_available false\n"
            "upgrade_outgoing_qos true\n"
            "check_retain_source true\n"
            "set_tcp_nodelay true\n"
            "sys_interval 0\n"
            "allow_duplicate_messages false\n"
            "pid_file /run/starling.pid\n"
            "user nobody\n"
            "node_id 3\n"
            "admin_listener 8088 127.0.0.1\n"
            "listener 1884 127.0.0.1\n"
            "protocol mqtt\n"
            "socket_domain ipv4\n"
            "max_connections 100\n"
            "max_qos 1\n"
            "max_topic_alias 0\n"
            "listener 1885\n"
            "socket_domain ipv6\n",
            &c);
    assert_false(c.local_only);
    assert_int_equal(c.listener_count, 2);
    const struct config_listener *a = &c.listeners[0], *b = &c.listeners[1];
    assert_int_equal(a->port, 1884);
    assert_string_equal(a->bind_address, "127.0.0.1");
    assert_int_equal(a->socket_domain, CONFIG_SOCKET_DOMAIN_IPV4);
    assert_int_equal(a->max_connections, 100);
    assert_int_equal(a->max_qos, 1);
    assert_int_equal(a->max_topic_alias, 0);
    assert_int_equal(a->line, 42);
    assert_string_equal(a->file, "t.conf");
    assert_int_equal(b->port, 1885);
    assert_null(b->bind_address);
    assert_int_equal(b->socket_domain, CONFIG_SOCKET_DOMAIN_IPV6);
    assert_int_equal(b->max_connections, -1);
    assert_int_equal(b->max_qos, 2);
    for (int i = 0; i < 2; i++) {
        const struct config_security *s = &c.listeners[i].security;
        assert_true(s->allow_anonymous);
        assert_false(s->allow_zero_length_clientid);
        assert_string_equal(s->auto_id_prefix, "gen-");
        assert_string_equal(s->password_file, "/etc/starling/passwd");
        assert_string_equal(s->acl_file, "/etc/starling/acl file"); /* rest of the line */
    }
    assert_false(c.persistence);
    assert_string_equal(c.persistence_location, "/var/lib/starling");
    assert_string_equal(c.persistence_file, "x.db");
    assert_int_equal(c.autosave_interval_s, 60);
    assert_true(c.autosave_on_changes);
    assert_int_equal(c.log_dest,
                     CONFIG_LOG_DEST_STDOUT | CONFIG_LOG_DEST_FILE | CONFIG_LOG_DEST_SYSLOG);
    assert_string_equal(c.log_file, "/var/log/starling.log");
    assert_int_equal(c.log_types, LOG_TYPE_ERROR | LOG_TYPE_SUBSCRIBE);
    assert_int_equal(c.log_facility, 3);
    assert_false(c.connection_messages);
    assert_false(c.log_timestamp);
    assert_string_equal(c.log_timestamp_format, "%Y-%m-%dT%H:%M:%S");
    assert_int_equal(c.max_inflight_messages, 5);
    assert_int_equal(c.max_inflight_bytes, 1000);
    assert_int_equal(c.max_queued_messages, 7);
    assert_true(c.max_queued_bytes == 123456789012ull);
    assert_true(c.queue_qos0_messages);
    assert_int_equal(c.message_size_limit, 1000);
    assert_int_equal(c.max_packet_size, 2000);
    assert_int_equal(c.max_keepalive, 30);
    assert_int_equal(c.persistent_client_expiration_s, 2 * 86400);
    assert_false(c.retain_available);
    assert_true(c.upgrade_outgoing_qos);
    assert_true(c.check_retain_source);
    assert_true(c.set_tcp_nodelay);
    assert_int_equal(c.sys_interval_s, 0);
    assert_string_equal(c.pid_file, "/run/starling.pid");
    assert_string_equal(c.user, "nobody");
    assert_int_equal(c.node_id, 3);
    assert_true(c.admin_listener_set);
    assert_int_equal(c.admin_port, 8088);
    assert_string_equal(c.admin_bind_address, "127.0.0.1");
    config_free(&c);
}

/* With a listener configured, allow_anonymous defaults to false (Mosquitto 2). */
static void listener_makes_anonymous_default_false(void **state)
{
    struct config c;
    (void)state;
    load_ok("listener 1883\n", &c);
    assert_false(c.local_only);
    assert_int_equal(c.listener_count, 1);
    assert_false(c.listeners[0].security.allow_anonymous);
    assert_false(c.listeners[0].local_only);
    config_free(&c);
}

/* In local-only mode an explicit allow_anonymous false is respected. */
static void local_only_respects_explicit_anonymous(void **state)
{
    struct config c;
    (void)state;
    load_ok("allow_anonymous false\npassword_file /p\n", &c);
    assert_true(c.local_only);
    assert_false(c.listeners[0].security.allow_anonymous);
    assert_string_equal(c.listeners[1].security.password_file, "/p");
    config_free(&c);
}

/* Directives that apply globally work wherever they appear, even after a listener. */
static void global_after_listener(void **state)
{
    struct config c;
    (void)state;
    load_ok("listener 1883\nallow_anonymous true\nmax_queued_messages 5\n", &c);
    assert_true(c.listeners[0].security.allow_anonymous);
    assert_int_equal(c.max_queued_messages, 5);
    config_free(&c);
}

/* per_listener_settings true: auth settings belong to the listener they follow. */
static void per_listener_settings_split(void **state)
{
    struct config c;
    (void)state;
    load_ok("per_listener_settings true\n"
            "listener 1883\n"
            "allow_anonymous true\n"
            "listener 1884\n"
            "password_file /pw\n"
            "acl_file /acl\n"
            "auto_id_prefix x-\n",
            &c);
    assert_true(c.per_listener_settings);
    assert_int_equal(c.listener_count, 2);
    assert_true(c.listeners[0].security.allow_anonymous);
    assert_null(c.listeners[0].security.password_file);
    assert_string_equal(c.listeners[0].security.auto_id_prefix, "auto-");
    assert_false(c.listeners[1].security.allow_anonymous);
    assert_string_equal(c.listeners[1].security.password_file, "/pw");
    assert_string_equal(c.listeners[1].security.acl_file, "/acl");
    assert_string_equal(c.listeners[1].security.auto_id_prefix, "x-");
    config_free(&c);
}

/* per_listener_settings false: the same security values are copied to every listener, and a
 * second password_file is an error even when it follows another listener. */
static void global_security_copied(void **state)
{
    struct config c;
    (void)state;
    load_ok("listener 1883\npassword_file /pw\nlistener 1884\n", &c);
    assert_string_equal(c.listeners[0].security.password_file, "/pw");
    assert_string_equal(c.listeners[1].security.password_file, "/pw");
    assert_true(c.listeners[0].security.password_file != c.listeners[1].security.password_file);
    config_free(&c);
    assert_int_equal(
        load("listener 1883\npassword_file /a\nlistener 1884\npassword_file /b\n", NULL, &c),
        -EINVAL);
    assert_string_equal(err, "t.conf:4: password_file: given twice");
}

/* Mosquitto's deprecated `port` / listener options before any listener make the default
 * listener (all addresses, 1883 unless `port` says otherwise). */
static void default_listener(void **state)
{
    struct config c;
    (void)state;
    load_ok("port 1999\nlistener 2000\n", &c);
    assert_int_equal(c.listener_count, 2);
    assert_string_equal(c.listeners[0].file, "t.conf");
    assert_int_equal(c.listeners[0].line, 0);
    assert_int_equal(c.listeners[0].port, 1999);
    assert_null(c.listeners[0].bind_address);
    assert_int_equal(c.listeners[1].port, 2000);
    config_free(&c);

    load_ok("max_qos 1\n", &c);
    assert_false(c.local_only);
    assert_int_equal(c.listener_count, 1);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_int_equal(c.listeners[0].max_qos, 1);
    assert_false(c.listeners[0].security.allow_anonymous);
    config_free(&c);

    load_ok("bind_address 127.0.0.1\n", &c);
    assert_int_equal(c.listener_count, 1);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");
    config_free(&c);

    /* max_topic_alias alone does not (as in Mosquitto) */
    load_ok("max_topic_alias 3\n", &c);
    assert_true(c.local_only);
    assert_int_equal(c.listeners[0].max_topic_alias, 3);
    config_free(&c);
}

/* -p without listeners in the file: local-only listeners on each given port. */
static void cmd_ports_local_only(void **state)
{
    struct config c;
    struct config_args a;
    char *argv[] = {"starling", "-p", "1999", "-p", "2001", "-v", "-d", NULL};
    (void)state;
    assert_int_equal(config_parse_args(7, argv, &a, err, sizeof err), 0);
    assert_int_equal(a.port_count, 2);
    assert_int_equal(load("", &a, &c), 0);
    assert_true(c.local_only);
    assert_int_equal(c.listener_count, 4);
    assert_int_equal(c.listeners[0].port, 1999);
    assert_string_equal(c.listeners[0].bind_address, "127.0.0.1");
    assert_int_equal(c.listeners[1].port, 1999);
    assert_string_equal(c.listeners[1].bind_address, "::1");
    assert_int_equal(c.listeners[2].port, 2001);
    assert_int_equal(c.listeners[3].port, 2001);
    assert_true(c.listeners[3].security.allow_anonymous);
    assert_true(c.verbose);
    assert_int_equal(c.log_types, LOG_TYPE_ALL);
    assert_true(c.daemon);
    assert_false(c.cmd_ports_ignored);
    config_free(&c);
}

/* -p with listeners in the file is ignored, as Mosquitto 2.0 does, and flagged. */
static void cmd_ports_ignored_with_listener(void **state)
{
    struct config c;
    struct config_args a;
    char *argv[] = {"starling", "-p", "1999", NULL};
    (void)state;
    assert_int_equal(config_parse_args(3, argv, &a, err, sizeof err), 0);
    assert_int_equal(load("listener 2000\nlog_type none\n", &a, &c), 0);
    assert_int_equal(c.listener_count, 1);
    assert_int_equal(c.listeners[0].port, 2000);
    assert_true(c.cmd_ports_ignored);
    assert_int_equal(c.log_types, 0);
    config_free(&c);
}

/* The command line: every option and every error. */
static void parse_args(void **state)
{
    struct config_args a;
    (void)state;
    char *ok[] = {"starling", "-c", "/etc/x.conf", "-h", NULL};
    assert_int_equal(config_parse_args(4, ok, &a, err, sizeof err), 0);
    assert_string_equal(a.config_file, "/etc/x.conf");
    assert_true(a.help);
    assert_false(a.daemon);
    assert_int_equal(a.port_count, 0);

    static const struct {
        int argc;
        char *argv[4];
        const char *msg;
    } bad[] = {
        {2, {"starling", "-c"}, "-c argument given, but no config file specified."},
        {2, {"starling", "-p"}, "-p argument given, but no port specified."},
        {3, {"starling", "-p", "0"}, "Invalid port specified (0)."},
        {3, {"starling", "-p", "65536"}, "Invalid port specified (65536)."},
        {3, {"starling", "-p", "12x"}, "Invalid port specified (12x)."},
        {2, {"starling", "-x"}, "Unknown option '-x'."},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(config_parse_args(bad[i].argc, bad[i].argv, &a, err, sizeof err), -EINVAL);
        assert_string_equal(err, bad[i].msg);
    }
    char *many[24] = {"starling"};
    for (int i = 0; i < 11; i++) {
        many[1 + 2 * i] = "-p";
        many[2 + 2 * i] = "1000";
    }
    assert_int_equal(config_parse_args(23, many, &a, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Only 10 ports can be specified on the command line.");
    assert_non_null(strstr(config_usage(), "Usage: starling [-c config_file]"));
}

/* Every error form, with its exact message and return code. */
static void error_messages(void **state)
{
    static const struct {
        const char *text;
        int rc;
        const char *msg;
    } cases[] = {
        {"foo bar\n", -EINVAL, "t.conf:1: foo: unknown directive"},
        {"f\x1b[2Joo\n", -EINVAL, "t.conf:1: f?[2Joo: unknown directive"},
        {"\n# c\nallow_anonymous maybe\n", -EINVAL,
         "t.conf:3: allow_anonymous: invalid value 'maybe' (expected true or false)"},
        {"allow_anonymous\n", -EINVAL,
         "t.conf:1: allow_anonymous: missing value (expected true or false)"},
        {"allow_anonymous true false\n", -EINVAL,
         "t.conf:1: allow_anonymous: unexpected extra value 'false'"},
        {"max_keepalive 5\n", -EINVAL,
         "t.conf:1: max_keepalive: value 5 out of range (10 to 65535)"},
        {"max_keepalive 65536\n", -EINVAL,
         "t.conf:1: max_keepalive: value 65536 out of range (10 to 65535)"},
        {"max_keepalive ten\n", -EINVAL,
         "t.conf:1: max_keepalive: invalid value 'ten' (expected an integer)"},
        {"max_keepalive\n", -EINVAL, "t.conf:1: max_keepalive: missing value"},
        {"max_packet_size 268435461\n", -EINVAL,
         "t.conf:1: max_packet_size: value 268435461 out of range (0, or 20 to 268435460)"},
        {"max_packet_size 19\n", -EINVAL,
         "t.conf:1: max_packet_size: value 19 out of range (0, or 20 to 268435460)"},
        {"max_packet_size x\n", -EINVAL,
         "t.conf:1: max_packet_size: invalid value 'x' (expected an integer)"},
        {"max_qos 3\n", -EINVAL, "t.conf:1: max_qos: value 3 out of range (0 to 2)"},
        {"max_inflight_messages 70000\n", -EINVAL,
         "t.conf:1: max_inflight_messages: value 70000 out of range (0 to 65535)"},
        {"max_queued_messages -1\n", -EINVAL,
         "t.conf:1: max_queued_messages: value -1 out of range (0 to 2147483647)"},
        {"message_size_limit 300000000\n", -EINVAL,
         "t.conf:1: message_size_limit: value 300000000 out of range (0 to 268435455)"},
        {"sys_interval -1\n", -EINVAL,
         "t.conf:1: sys_interval: value -1 out of range (0 to 2147483647)"},
        {"log_facility 9\n", -EINVAL, "t.conf:1: log_facility: value 9 out of range (0 to 7)"},
        {"node_id 0\n", -EINVAL, "t.conf:1: node_id: value 0 out of range (1 to 4294967295)"},
        {"listener\n", -EINVAL, "t.conf:1: listener: missing port"},
        {"listener 70000\n", -EINVAL,
         "t.conf:1: listener: invalid port '70000' (expected 1 to 65535)"},
        {"listener abc\n", -EINVAL, "t.conf:1: listener: invalid port 'abc' (expected 1 to 65535)"},
        {"listener 0 /tmp/sock\n", -ENOTSUP,
         "t.conf:1: listener: port 0 (a Unix socket listener) is not supported yet"},
        {"listener 1883 127.0.0.1 x\n", -EINVAL, "t.conf:1: listener: unexpected extra value 'x'"},
        {"listener 1883\nlistener 1883\n", -EINVAL,
         "t.conf:2: listener: port 1883 is already a listener (t.conf:1)"},
        {"protocol foo\n", -EINVAL,
         "t.conf:1: protocol: invalid value 'foo' (expected mqtt or websockets)"},
        {"socket_domain foo\n", -EINVAL,
         "t.conf:1: socket_domain: invalid value 'foo' (expected ipv4 or ipv6)"},
        {"log_dest file\n", -EINVAL, "t.conf:1: log_dest: missing file name after 'file'"},
        {"log_dest file /a\nlog_dest file /b\n", -EINVAL,
         "t.conf:2: log_dest: only one log file may be given"},
        {"log_dest bogus\n", -EINVAL, "t.conf:1: log_dest: invalid value 'bogus'"},
        {"log_dest dlt\n", -ENOTSUP, "t.conf:1: log_dest: dlt not supported yet"},
        {"log_type bogus\n", -EINVAL, "t.conf:1: log_type: invalid value 'bogus'"},
        {"log_type\n", -EINVAL, "t.conf:1: log_type: missing value"},
        {"persistence_location\n", -EINVAL, "t.conf:1: persistence_location: missing value"},
        {"pid_file /a\npid_file /b\n", -EINVAL, "t.conf:2: pid_file: given twice"},
        {"user a\nuser b\n", -EINVAL, "t.conf:2: user: given twice"},
        {"persistent_client_expiration 5\n", -EINVAL,
         "t.conf:1: persistent_client_expiration: invalid duration '5' (expected a positive "
         "number and h, d, w, m or y)"},
        {"persistent_client_expiration 0d\n", -EINVAL,
         "t.conf:1: persistent_client_expiration: invalid duration '0d' (expected a positive "
         "number and h, d, w, m or y)"},
        {"allow_anonymous true\nper_listener_settings true\n", -EINVAL,
         "t.conf:2: per_listener_settings: must be set before any other security settings"},
        {"cafile /etc/ca.pem\n", -EINVAL,
         "t.conf: TLS options given without certfile (TLS is off)"},
        {"listener 8883\ncertfile /c\n", -EINVAL,
         "t.conf:1: listener: certfile given without keyfile"},
        {"listener 8883\nkeyfile /k\n", -EINVAL,
         "t.conf:1: listener: keyfile given without certfile"},
        {"listener 1\nlistener 8883\ncertfile /c\nkeyfile /k\nrequire_certificate true\n", -EINVAL,
         "t.conf:2: listener: require_certificate needs cafile or capath"},
        {"listener 8883\ncertfile /c\nkeyfile /k\ncafile /ca\nuse_identity_as_username "
         "true\nuse_subject_as_username true\n",
         -EINVAL,
         "t.conf:1: listener: use_identity_as_username and use_subject_as_username are "
         "exclusive"},
        {"listener 8883\ncertfile /c\ncertfile /d\n", -EINVAL, "t.conf:3: certfile: given twice"},
        {"listener 8883\ntls_version tlsv1.1\n", -ENOTSUP,
         "t.conf:2: tls_version: tlsv1.1 is not supported (tlsv1.2 or tlsv1.3)"},
        {"listener 8883\ntls_version ssl3\n", -EINVAL,
         "t.conf:2: tls_version: invalid value 'ssl3' (expected tlsv1.2 or tlsv1.3)"},
        {"psk_hint x\n", -ENOTSUP,
         "t.conf:1: psk_hint: not supported by this build (TLS-PSK is not available)"},
        {"psk_file /p\n", -ENOTSUP,
         "t.conf:1: psk_file: not supported by this build (TLS-PSK is not available)"},
        {"dhparamfile /p\n", -ENOTSUP, "t.conf:1: dhparamfile: not supported yet"},
        {"http_dir /www\n", -ENOTSUP, "t.conf:1: http_dir: not supported yet"},
        {"connection bridge1\n", -ENOTSUP, "t.conf:1: connection: not supported yet"},
        {"bridge_cafile /x\n", -ENOTSUP, "t.conf:1: bridge_cafile: not supported yet"},
        {"auth_opt_db x\n", -ENOTSUP, "t.conf:1: auth_opt_db: not supported yet"},
        {"admin_listener 1\nadmin_listener 2\n", -EINVAL, "t.conf:2: admin_listener: given twice"},
        {"admin_listener 0\n", -ENOTSUP,
         "t.conf:1: admin_listener: port 0 (a Unix socket listener) is not supported yet"},
        {"admin_listener 8088 127.0.0.1 x\n", -EINVAL,
         "t.conf:1: admin_listener: unexpected extra value 'x'"},
        {"admin_listener 8088 a/b\n", -EINVAL,
         "t.conf:1: admin_listener: invalid bind address 'a/b'"},
        {"admin_certfile /nonexistent-starling-crt\n", -ENOENT,
         "t.conf:1: admin_certfile: cannot read '/nonexistent-starling-crt': No such file or "
         "directory"},
        {"admin_listener 8088\nadmin_certfile /etc/passwd\n", -EINVAL,
         "t.conf:2: admin_certfile: admin HTTPS needs admin_certfile and admin_keyfile "
         "(admin_cafile only with them)"},
        {"admin_cafile /etc/passwd\n", -EINVAL,
         "t.conf:1: admin_cafile: admin HTTPS needs admin_certfile and admin_keyfile "
         "(admin_cafile only with them)"},
        {"admin_token_file\n", -EINVAL, "t.conf:1: admin_token_file: missing file name"},
        {"admin_token_file /nonexistent-starling-token\n", -ENOENT,
         "t.conf:1: admin_token_file: cannot read '/nonexistent-starling-token': No such file "
         "or directory"},
        {"node_id x\n", -EINVAL, "t.conf:1: node_id: invalid value 'x' (expected an integer)"},
        {"node_id 4294967296\n", -EINVAL,
         "t.conf:1: node_id: value 4294967296 out of range (1 to 4294967295)"},
        {"node_id 1\nnode_id 2\n", -EINVAL, "t.conf:2: node_id: given twice"},
        {"cluster_listen 7700\ncluster_listen 7701\n", -EINVAL,
         "t.conf:2: cluster_listen: given twice"},
        {"cluster_listen 99999\n", -EINVAL,
         "t.conf:1: cluster_listen: invalid port '99999' (expected 1 to 65535)"},
        {"cluster_advertise\n", -EINVAL, "t.conf:1: cluster_advertise: missing HOST:PORT"},
        {"cluster_advertise host\n", -EINVAL,
         "t.conf:1: cluster_advertise: invalid address 'host' (expected HOST:PORT)"},
        {"cluster_advertise host:0\n", -EINVAL,
         "t.conf:1: cluster_advertise: invalid port in 'host:0' (expected 1 to 65535)"},
        {"cluster_advertise ::1:7700\n", -EINVAL,
         "t.conf:1: cluster_advertise: invalid address '::1:7700' (an IPv6 address needs "
         "brackets: [ADDRESS]:PORT)"},
        {"cluster_advertise [::1]7700\n", -EINVAL,
         "t.conf:1: cluster_advertise: invalid address '[::1]7700' (expected [IPV6]:PORT)"},
        {"cluster_advertise :7700\n", -EINVAL,
         "t.conf:1: cluster_advertise: invalid host in ':7700'"},
        {"cluster_advertise a:1\ncluster_advertise b:2\n", -EINVAL,
         "t.conf:2: cluster_advertise: given twice"},
        {"cluster_peers\n", -EINVAL, "t.conf:1: cluster_peers: missing ID@HOST:PORT"},
        {"cluster_peers a b\n", -EINVAL,
         "t.conf:1: cluster_peers: invalid peer 'a' (expected ID@HOST:PORT)"},
        {"cluster_peers 0@h:1\n", -EINVAL,
         "t.conf:1: cluster_peers: invalid peer id in '0@h:1' (expected 1 to 4294967295)"},
        {"cluster_peers x@h:1\n", -EINVAL,
         "t.conf:1: cluster_peers: invalid peer id in 'x@h:1' (expected 1 to 4294967295)"},
        {"cluster_peers 1@h:1 2@h:70000\n", -EINVAL,
         "t.conf:1: cluster_peers: invalid port in 'h:70000' (expected 1 to 65535)"},
        {"cluster_peers 1@h:1\ncluster_peers 1@g:1\n", -EINVAL,
         "t.conf:2: cluster_peers: peer id 1 given twice"},
        {"cluster_peers 1@h:1 2@h:1\n", -EINVAL,
         "t.conf:1: cluster_peers: peers 1 and 2 have the same address 'h:1'"},
        {"cluster_peers 1@h:1\ncluster_join g:1\n", -EINVAL,
         "t.conf:2: cluster_join: cannot be combined with cluster_peers (t.conf:1): initial "
         "members list the peers, a node added later joins"},
        {"cluster_join g:1\ncluster_peers 1@h:1\n", -EINVAL,
         "t.conf:2: cluster_peers: cannot be combined with cluster_join (t.conf:1): initial "
         "members list the peers, a node added later joins"},
        {"cluster_join g:1\ncluster_join g:2\n", -EINVAL, "t.conf:2: cluster_join: given twice"},
        {"cluster_join\n", -EINVAL, "t.conf:1: cluster_join: missing HOST:PORT"},
        {"node_id 1\n\ncluster_peers 1@h:1 2@g:1\n", -EINVAL,
         "t.conf:3: cluster_peers: needs cluster_secret_file: every connection between nodes "
         "proves the shared secret"},
        {"node_id 1\ncluster_join h:1\n", -EINVAL,
         "t.conf:2: cluster_join: needs cluster_secret_file: every connection between nodes "
         "proves the shared secret"},
        {"cluster_secret_file\n", -EINVAL, "t.conf:1: cluster_secret_file: missing file name"},
        {"cluster_secret_file /nonexistent-starling-secret\n", -ENOENT,
         "t.conf:1: cluster_secret_file: cannot read '/nonexistent-starling-secret': No such "
         "file or directory"},
        {"cluster_cafile /nonexistent-starling-ca\n", -ENOENT,
         "t.conf:1: cluster_cafile: cannot read '/nonexistent-starling-ca': No such file or "
         "directory"},
        {"include_dir\n", -EINVAL, "t.conf:1: include_dir: missing directory"},
        {"include_dir /nonexistent-starling-dir\n", -ENOENT,
         "t.conf:1: include_dir: cannot open directory '/nonexistent-starling-dir': No such file "
         "or directory"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config c;
        int rc = load(cases[i].text, NULL, &c);
        if (rc != cases[i].rc || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu (%s): rc %d err '%s', expected %d '%s'", i, cases[i].text, rc, err,
                     cases[i].rc, cases[i].msg);
    }
}

/* A NUL byte inside the file is reported with its line. */
static void nul_byte(void **state)
{
    struct config c;
    (void)state;
    static const char text[] = "listener 1883\nallow_anon\0ymous true\n";
    assert_int_equal(config_load_buffer("t.conf", text, sizeof text - 1, NULL, &c, err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "t.conf:2: NUL byte in line");
}

/* Inline comments after a value, leading blanks and CRLF line ends are accepted. */
static void lenient_forms(void **state)
{
    struct config c;
    (void)state;
    load_ok("  allow_anonymous true # trailing comment\r\n\tlistener 1883\r\n", &c);
    assert_true(c.listeners[0].security.allow_anonymous);
    config_free(&c);
}

/* An unreadable main file names the file. */
static void missing_file(void **state)
{
    struct config c;
    (void)state;
    assert_int_equal(config_load("/nonexistent/starling.conf", NULL, &c, err, sizeof err), -ENOENT);
    assert_string_equal(err, "/nonexistent/starling.conf: cannot read: No such file or directory");
    assert_int_equal(config_load("/", NULL, &c, err, sizeof err), -EISDIR);
    assert_string_equal(err, "/: cannot read: Is a directory");
}

/* include_dir reads *.conf in Mosquitto's order (case-insensitive, upper case first), errors
 * name the included file and line, and the main file records its path. */
static void include_dir_order(void **state)
{
    const char *dir = test_mkdtemp();
    char sub[512], main_path[512], text[1024];
    struct config c;
    (void)state;
    assert_non_null(dir);
    snprintf(sub, sizeof sub, "%s/conf.d", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    /* Each file adds a listener; the port order shows the load order. */
    write_file(sub, "b.conf", "listener 6\n");
    write_file(sub, "A.conf", "listener 3\n");
    write_file(sub, "01.conf", "listener 2\n");
    write_file(sub, "a.conf", "listener 4\n");
    write_file(sub, "B.conf", "listener 5\n");
    write_file(sub, "00.conf", "listener 1\n");
    write_file(sub, "skip.txt", "garbage\n");
    write_file(sub, "x.conf.bak", "garbage\n");
    snprintf(text, sizeof text, "listener 100\ninclude_dir %s\nmax_queued_messages 9\n", sub);
    write_file(dir, "main.conf", text);
    snprintf(main_path, sizeof main_path, "%s/main.conf", dir);
    int rc = config_load(main_path, NULL, &c, err, sizeof err);
    if (rc != 0) fail_msg("%s", err);
    assert_int_equal(c.listener_count, 7);
    static const int order[] = {100, 1, 2, 3, 4, 5, 6};
    for (int i = 0; i < 7; i++)
        assert_int_equal(c.listeners[i].port, order[i]);
    assert_int_equal(c.max_queued_messages, 9);
    assert_string_equal(c.config_file, main_path);
    char expect[2048];
    snprintf(expect, sizeof expect, "%s/00.conf", sub);
    assert_string_equal(c.listeners[1].file, expect); /* outlives the include */
    assert_int_equal(c.listeners[1].line, 1);
    assert_string_equal(c.listeners[0].file, main_path);
    config_free(&c);

    /* A duplicate names both places, the earlier one in another included file. */
    write_file(sub, "d.conf", "\nlistener 3\n");
    assert_int_equal(config_load(main_path, NULL, &c, err, sizeof err), -EINVAL);
    snprintf(expect, sizeof expect,
             "%s/d.conf:2: listener: port 3 is already a listener (%s/A.conf:1)", sub, sub);
    assert_string_equal(err, expect);
    snprintf(expect, sizeof expect, "%s/d.conf", sub);
    remove(expect);

    /* An error inside an included file names that file and its line. */
    write_file(sub, "c.conf", "\n\nmax_qos 7\n");
    assert_int_equal(config_load(main_path, NULL, &c, err, sizeof err), -EINVAL);
    snprintf(expect, sizeof expect, "%s/c.conf:3: max_qos: value 7 out of range (0 to 2)", sub);
    assert_string_equal(err, expect);

    /* include_dir inside an included file is refused. */
    write_file(sub, "c.conf", "include_dir /tmp\n");
    assert_int_equal(config_load(main_path, NULL, &c, err, sizeof err), -EINVAL);
    snprintf(expect, sizeof expect,
             "%s/c.conf:1: include_dir: only allowed in the main configuration file", sub);
    assert_string_equal(err, expect);

    /* The directory must not contain the main file. */
    const char *dir2 = test_mkdtemp();
    assert_non_null(dir2);
    snprintf(text, sizeof text, "include_dir %s\n", dir2);
    write_file(dir2, "self.conf", text);
    snprintf(main_path, sizeof main_path, "%s/self.conf", dir2);
    assert_int_equal(config_load(main_path, NULL, &c, err, sizeof err), -EINVAL);
    snprintf(expect, sizeof expect, "%s:1: include_dir: '%s' contains the main configuration file",
             main_path, dir2);
    assert_string_equal(err, expect);
    test_rmdir(dir2);
    test_rmdir(dir);
}

/* Durations: h d w m y, positive, unit required. */
static void durations(void **state)
{
    uint64_t s;
    (void)state;
    assert_int_equal(config_parse_duration("1h", &s), 0);
    assert_int_equal(s, 3600);
    assert_int_equal(config_parse_duration("2d", &s), 0);
    assert_int_equal(s, 172800);
    assert_int_equal(config_parse_duration("1w", &s), 0);
    assert_int_equal(s, 604800);
    assert_int_equal(config_parse_duration("1m", &s), 0);
    assert_int_equal(s, 2592000);
    assert_int_equal(config_parse_duration("1y", &s), 0);
    assert_int_equal(s, 31536000);
    assert_int_equal(config_parse_duration("10", &s), -EINVAL);
    assert_int_equal(config_parse_duration("h", &s), -EINVAL);
    assert_int_equal(config_parse_duration("0h", &s), -EINVAL);
    assert_int_equal(config_parse_duration("-1h", &s), -EINVAL);
    assert_int_equal(config_parse_duration("1x", &s), -EINVAL);
    assert_int_equal(config_parse_duration("99999999999y", &s), -EINVAL);
}

/* log_dest none and log_type none/all; the first occurrence replaces the default. */
static void log_settings(void **state)
{
    struct config c;
    (void)state;
    load_ok("log_dest none\nlog_type all\n", &c);
    assert_int_equal(c.log_dest, 0);
    assert_int_equal(c.log_types, LOG_TYPE_ALL);
    config_free(&c);
    load_ok("log_type debug warning\nlog_dest topic\n", &c);
    assert_int_equal(c.log_types, LOG_TYPE_DEBUG | LOG_TYPE_WARNING);
    assert_int_equal(c.log_dest, CONFIG_LOG_DEST_TOPIC);
    config_free(&c);
}

/* max_connections: any negative value means unlimited (-1), as in Mosquitto. */
/* TLS and WebSocket options are the listener's own (the default listener takes those given
 * before any `listener`); each listener gets its own copy. */
static void tls_and_websockets(void **state)
{
    struct config c;
    (void)state;
    load_ok("certfile /s.pem\nkeyfile /s.key\n"
            "listener 8883\ncertfile /c.pem\nkeyfile /k.pem\ncafile /ca.pem\ncapath /cad\n"
            "require_certificate true\nuse_identity_as_username true\ntls_version tlsv1.3\n"
            "ciphers ECDHE-RSA-AES128-GCM-SHA256\nciphers_tls1.3 TLS13-AES128-GCM-SHA256\n"
            "crlfile /crl.pem\n"
            "listener 9001\nprotocol websockets\n"
            "listener 9443\nprotocol websockets\ncertfile /c2.pem\nkeyfile /k2.pem\n"
            "use_subject_as_username true\ntls_version tlsv1.2\n",
            &c);
    assert_int_equal(c.listener_count, 4);
    const struct config_listener *d = &c.listeners[0], *t = &c.listeners[1];
    const struct config_listener *w = &c.listeners[2], *wt = &c.listeners[3];
    assert_int_equal(d->port, 1883);
    assert_string_equal(d->tls.certfile, "/s.pem");
    assert_string_equal(d->tls.keyfile, "/s.key");
    assert_null(d->tls.cafile);
    assert_int_equal(t->port, 8883);
    assert_string_equal(t->tls.certfile, "/c.pem");
    assert_string_equal(t->tls.keyfile, "/k.pem");
    assert_string_equal(t->tls.cafile, "/ca.pem");
    assert_string_equal(t->tls.capath, "/cad");
    assert_string_equal(t->tls.ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
    assert_string_equal(t->tls.ciphers_tls13, "TLS13-AES128-GCM-SHA256");
    assert_string_equal(t->tls.crlfile, "/crl.pem");
    assert_true(t->tls.require_certificate);
    assert_true(t->tls.use_identity_as_username);
    assert_false(t->tls.use_subject_as_username);
    assert_int_equal(t->tls.version, CONFIG_TLS_1_3);
    assert_int_equal(t->protocol, CONFIG_PROTOCOL_MQTT);
    assert_int_equal(w->protocol, CONFIG_PROTOCOL_WEBSOCKETS);
    assert_null(w->tls.certfile);
    assert_int_equal(w->tls.version, CONFIG_TLS_ANY);
    assert_int_equal(wt->protocol, CONFIG_PROTOCOL_WEBSOCKETS);
    assert_string_equal(wt->tls.certfile, "/c2.pem");
    assert_true(wt->tls.use_subject_as_username);
    assert_false(wt->tls.require_certificate);
    assert_int_equal(wt->tls.version, CONFIG_TLS_1_2);
    config_free(&c);
}

static void max_connections_negative(void **state)
{
    struct config c;
    (void)state;
    load_ok("listener 1883\nmax_connections -5\n", &c);
    assert_int_equal(c.listeners[0].max_connections, -1);
    config_free(&c);
}

/* Every allocation of a load can fail: the load then returns -ENOMEM with "out of memory"
 * and leaks nothing; once no fault hits, it succeeds. */
/* Copies fmt into out with every "%s" replaced by dir. */
static void subst(char *out, size_t cap, const char *fmt, const char *dir)
{
    size_t n = 0;
    for (const char *f = fmt; *f != '\0' && n + 1 < cap; f++) {
        if (f[0] == '%' && f[1] == 's') {
            n += (size_t)snprintf(out + n, cap - n, "%s", dir);
            f++;
        } else {
            out[n++] = *f;
        }
    }
    out[n < cap ? n : cap - 1] = '\0';
}

/* Loads text with every "%s" replaced by dir. */
static int load_in(const char *dir, const char *fmt, struct config *cfg)
{
    char text[4096];
    subst(text, sizeof text, fmt, dir);
    return load(text, NULL, cfg);
}

/* The cluster and admin directives land in their fields; cluster_peers takes several entries
 * on a line and may repeat; the secret and the token are read from their files with the
 * trailing newline removed. */
static void cluster_directives(void **state)
{
    const char *dir = test_mkdtemp();
    struct config c;
    (void)state;
    write_file(dir, "secret", "s3cret value\n\n");
    write_file(dir, "token", "tok-EN_0123\r\n");
    int rc = load_in(dir,
                     "cluster_secret_file %s/secret\n"
                     "admin_token_file %s/token\n"
                     "cluster_peers 1@127.0.0.1:7701 2@[::1]:7702   # the first two\n"
                     "cluster_peers 3@node-3.starling.svc:7700\n"
                     "node_id 2\n"
                     "cluster_listen 7702 ::\n"
                     "cluster_advertise [::1]:7702\n"
                     "admin_listener 9000 0.0.0.0\n",
                     &c);
    if (rc != 0) fail_msg("%s", err);
    assert_true(config_is_clustered(&c));
    assert_int_equal(c.node_id, 2);
    assert_true(c.node_id_set);
    assert_true(c.cluster_listen_set);
    assert_int_equal(c.cluster_port, 7702);
    assert_string_equal(c.cluster_bind_address, "::");
    assert_true(c.cluster_advertise_set);
    assert_string_equal(c.cluster_advertise_host, "::1");
    assert_int_equal(c.cluster_advertise_port, 7702);
    assert_int_equal(c.cluster_peer_count, 3);
    static const struct {
        uint64_t id;
        const char *host;
        uint16_t port;
    } want[] = {{1, "127.0.0.1", 7701}, {2, "::1", 7702}, {3, "node-3.starling.svc", 7700}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(c.cluster_peers[i].id, want[i].id);
        assert_string_equal(c.cluster_peers[i].host, want[i].host);
        assert_int_equal(c.cluster_peers[i].port, want[i].port);
    }
    assert_null(c.cluster_join_host);
    assert_int_equal(c.cluster_secret_len, 12);
    assert_memory_equal(c.cluster_secret, "s3cret value", 12);
    assert_non_null(strstr(c.cluster_secret_file, "/secret"));
    assert_true(c.admin_listener_set);
    assert_int_equal(c.admin_port, 9000);
    assert_string_equal(c.admin_bind_address, "0.0.0.0");
    assert_string_equal(c.admin_token, "tok-EN_0123");
    config_free(&c);

    /* A node added later: cluster_join; cluster_advertise defaults to the bind address. */
    rc = load_in(dir,
                 "node_id 7\ncluster_join starling-0.starling:7700\ncluster_secret_file "
                 "%s/secret\ncluster_listen 7705 127.0.0.5\nadmin_listener\n",
                 &c);
    if (rc != 0) fail_msg("%s", err);
    assert_true(config_is_clustered(&c));
    assert_string_equal(c.cluster_join_host, "starling-0.starling");
    assert_int_equal(c.cluster_join_port, 7700);
    assert_false(c.cluster_advertise_set);
    assert_string_equal(c.cluster_advertise_host, "127.0.0.5");
    assert_int_equal(c.cluster_advertise_port, 7705);
    /* admin_listener alone: port 8088 on 127.0.0.1 */
    assert_true(c.admin_listener_set);
    assert_int_equal(c.admin_port, 8088);
    assert_string_equal(c.admin_bind_address, "127.0.0.1");
    assert_null(c.admin_token);
    config_free(&c);

    /* Without a bind address the host name is advertised. */
    char host[256];
    assert_int_equal(gethostname(host, sizeof host), 0);
    rc = load_in(dir, "cluster_listen 7800\n", &c);
    if (rc != 0) fail_msg("%s", err);
    assert_false(config_is_clustered(&c));
    assert_string_equal(c.cluster_advertise_host, host);
    assert_int_equal(c.cluster_advertise_port, 7800);
    config_free(&c);
    test_rmdir(dir);
}

/* Errors that need files, or the whole file, to show. */
static void cluster_errors(void **state)
{
    const char *dir = test_mkdtemp();
    struct config c;
    char expect[1024];
    (void)state;
    write_file(dir, "secret", "s\n");
    write_file(dir, "empty", " \n\n");
    write_file(dir, "spaced", "two words\n");
    static const struct {
        const char *text;
        int rc;
        const char *msg; /* "%s" is the directory */
    } cases[] = {
        {"cluster_secret_file %s/secret\ncluster_peers 1@a:1 2@b:1\n", -EINVAL,
         "t.conf:2: cluster_peers: needs node_id: each member of a cluster has its own id"},
        {"cluster_secret_file %s/secret\ncluster_peers 1@a:1 2@b:1\nnode_id 3\n", -EINVAL,
         "t.conf:2: cluster_peers: node_id 3 is not among the peers (an initial member lists "
         "itself too)"},
        {"cluster_secret_file %s/empty\n", -EINVAL,
         "t.conf:1: cluster_secret_file: '%s/empty' is empty"},
        {"cluster_secret_file %s/secret\ncluster_secret_file %s/secret\n", -EINVAL,
         "t.conf:2: cluster_secret_file: given twice"},
        {"admin_token_file %s/spaced\n", -EINVAL,
         "t.conf:1: admin_token_file: the token in '%s/spaced' may only hold visible ASCII "
         "characters (no spaces)"},
        {"admin_token_file %s\n", -EISDIR,
         "t.conf:1: admin_token_file: cannot read '%s': Is a directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = load_in(dir, cases[i].text, &c);
        subst(expect, sizeof expect, cases[i].msg, dir);
        if (rc != cases[i].rc || strcmp(err, expect) != 0)
            fail_msg("case %zu (%s): rc %d err '%s', expected %d '%s'", i, cases[i].text, rc, err,
                     cases[i].rc, expect);
    }
    test_rmdir(dir);
}

/* Every allocation of the cluster directives may fail: -ENOMEM, nothing leaks. */
static void cluster_out_of_memory(void **state)
{
    const char *dir = test_mkdtemp();
    (void)state;
    write_file(dir, "secret", "s3cret\n");
    write_file(dir, "token", "t0ken\n");
    for (long delay = 0;; delay++) {
        struct config c;
        long live = mem_live_blocks();
        unsigned long faults = mem_fault_count();
        mem_fault_set(delay, 1);
        int rc = load_in(dir,
                         "cluster_secret_file %s/secret\nadmin_token_file %s/token\nnode_id 2\n"
                         "cluster_peers 1@a:1 2@b:2\ncluster_peers 3@[::1]:3\n"
                         "cluster_listen 7700 127.0.0.1\nadmin_listener 1 ::1\n",
                         &c);
        mem_fault_set(-1, 0);
        bool hit = mem_fault_count() != faults;
        if (rc == 0) config_free(&c);
        assert_int_equal(mem_live_blocks(), live);
        if (!hit) {
            if (rc != 0) fail_msg("%s", err);
            assert_true(delay > 5);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_non_null(strstr(err, "out of memory"));
    }
    test_rmdir(dir);
}

static void out_of_memory(void **state)
{
    static const char text[] = "per_listener_settings true\n"
                               "port 1999\n"
                               "bind_address 127.0.0.1\n"
                               "certfile /c0\n"
                               "keyfile /k0\n"
                               "password_file /pw0\n"
                               "listener 1883 ::1\n"
                               "password_file /pw\n"
                               "acl_file /acl\n"
                               "auto_id_prefix a-\n"
                               "listener 1884\n"
                               "log_dest file /tmp/x.log\n"
                               "log_timestamp_format %H\n"
                               "persistence_location /data\n"
                               "pid_file /pid\n"
                               "user u\n"
                               "admin_listener 8088 ::1\n";
    static const char local[] = "allow_anonymous false\npassword_file /pw\n";
    struct config_args args;
    char *argv[] = {"starling", "-p", "1999", "-p", "2000", NULL};
    (void)state;
    assert_int_equal(config_parse_args(5, argv, &args, err, sizeof err), 0);
    for (int which = 0; which < 2; which++) {
        const char *t = which == 0 ? text : local;
        for (long delay = 0;; delay++) {
            struct config c;
            long live = mem_live_blocks();
            unsigned long faults = mem_fault_count();
            mem_fault_set(delay, 1);
            int rc = load(t, &args, &c);
            mem_fault_set(-1, 0);
            bool hit = mem_fault_count() != faults;
            if (rc == 0) config_free(&c);
            assert_int_equal(mem_live_blocks(), live);
            if (!hit) {
                assert_int_equal(rc, 0);
                assert_true(delay > 10);
                break;
            }
            assert_int_equal(rc, -ENOMEM);
            assert_non_null(strstr(err, "out of memory"));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_without_file),
        cmocka_unit_test(defaults_function),
        cmocka_unit_test(every_directive_set),
        cmocka_unit_test(listener_makes_anonymous_default_false),
        cmocka_unit_test(local_only_respects_explicit_anonymous),
        cmocka_unit_test(global_after_listener),
        cmocka_unit_test(per_listener_settings_split),
        cmocka_unit_test(global_security_copied),
        cmocka_unit_test(default_listener),
        cmocka_unit_test(cmd_ports_local_only),
        cmocka_unit_test(cmd_ports_ignored_with_listener),
        cmocka_unit_test(parse_args),
        cmocka_unit_test(error_messages),
        cmocka_unit_test(nul_byte),
        cmocka_unit_test(lenient_forms),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(include_dir_order),
        cmocka_unit_test(durations),
        cmocka_unit_test(log_settings),
        cmocka_unit_test(max_connections_negative),
        cmocka_unit_test(tls_and_websockets),
        cmocka_unit_test(cluster_directives),
        cmocka_unit_test(cluster_errors),
        cmocka_unit_test(cluster_out_of_memory),
        cmocka_unit_test(out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
