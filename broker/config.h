/* The broker's configuration: the mosquitto.conf-compatible file and the command line, read
 * through one table of directives into an immutable struct config.
 *
 * Contract:
 * - config_load() builds a complete struct config (defaults, then the file, then the command
 *   line) or fails with one message `FILE:LINE: DIRECTIVE: what is wrong` in err. On failure
 *   *out holds nothing that needs freeing.
 * - After config_load() returns 0 the struct is read-only: pass it as `const struct config *`.
 *   It owns every string and array in it; config_free() releases them.
 * - Every listener carries its effective settings: with per_listener_settings false the global
 *   security settings are copied into each listener, so the broker only ever reads
 *   `listener->security`.
 * - No function here touches sockets or the loop; config_load() reads files (the config file,
 *   include_dir, cluster_secret_file, admin_token_file) and asks for the host name (the
 *   default of cluster_advertise), nothing else. Not thread-safe while loading; a loaded config may
 * be read from any thread.
 */
#ifndef STARLING_BROKER_CONFIG_H
#define STARLING_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Mosquitto's limit on -p options. */
#define CONFIG_MAX_CMD_PORTS 10

enum config_protocol {
    CONFIG_PROTOCOL_MQTT = 0,
    CONFIG_PROTOCOL_WEBSOCKETS, /* MQTT over WebSocket (subprotocol mqtt) */
};

/* tls_version: which TLS versions a listener accepts. */
enum config_tls_version {
    CONFIG_TLS_ANY = 0, /* TLS 1.2 and 1.3 (default) */
    CONFIG_TLS_1_2,     /* tlsv1.2 only */
    CONFIG_TLS_1_3,     /* tlsv1.3 only */
};

/* A listener's TLS settings (Mosquitto's meaning). TLS is on when certfile is set; load
 * checks that certfile and keyfile come together and that the other options need them. */
struct config_tls {
    char *cafile;        /* PEM CA certificates for client certificates; NULL: none */
    char *capath;        /* directory of PEM CA certificates; NULL: none */
    char *certfile;      /* PEM server certificate (chain); NULL: no TLS */
    char *keyfile;       /* PEM private key without password */
    char *ciphers;       /* TLS 1.2 cipher list (OpenSSL names); NULL: the library's default */
    char *ciphers_tls13; /* ciphers_tls1.3: TLS 1.3 suites; NULL: the library's default */
    char *crlfile;       /* PEM CRL checked against client certificates; NULL: none */
    uint8_t version;     /* enum config_tls_version */
    bool require_certificate;
    bool use_identity_as_username; /* the client certificate's CN is the username */
    bool use_subject_as_username;  /* the client certificate's subject is the username */
};

/* socket_domain: which address family a listener's bind address resolves to. */
enum config_socket_domain {
    CONFIG_SOCKET_DOMAIN_ANY = 0, /* both (mosquitto's default) */
    CONFIG_SOCKET_DOMAIN_IPV4,
    CONFIG_SOCKET_DOMAIN_IPV6,
};

/* The settings per_listener_settings moves between global and listener scope. */
struct config_security {
    bool allow_anonymous;
    bool allow_zero_length_clientid; /* default true */
    char *auto_id_prefix;            /* default "auto-" */
    char *password_file;             /* NULL: no password file */
    char *acl_file;                  /* NULL: no ACL, everything is allowed */
    bool allow_anonymous_set;        /* the file set allow_anonymous explicitly */
};

struct config_listener {
    uint16_t port;      /* 1..65535 (port 0 is mosquitto's Unix socket form: refused) */
    char *bind_address; /* NULL: all addresses */
    enum config_protocol protocol;
    enum config_socket_domain socket_domain;
    int max_connections;      /* -1: unlimited (default) */
    uint8_t max_qos;          /* default 2 (mosquitto 2: a listener setting) */
    uint16_t max_topic_alias; /* default 10 (a listener setting) */
    struct config_tls tls;    /* TLS on this listener when tls.certfile is set */
    /* true for the implicit 127.0.0.1/::1 listeners of local-only mode */
    bool local_only;
    /* Effective auth settings for clients of this listener (see the header comment). */
    struct config_security security;
    char *file; /* where it was declared, for messages: the file name ("<default>" for the
                   local-only listeners, the main file with line 0 for the default listener) */
    int line;
};

/* A cluster_peers entry ID@HOST:PORT. */
struct config_peer {
    uint64_t id;   /* >= 1 */
    char *host;    /* a host name or address (IPv6 without the brackets) */
    uint16_t port; /* 1..65535 */
};

/* Bits of log_dest. */
enum config_log_dest {
    CONFIG_LOG_DEST_NONE = 0,
    CONFIG_LOG_DEST_STDOUT = 1 << 0,
    CONFIG_LOG_DEST_STDERR = 1 << 1,
    CONFIG_LOG_DEST_FILE = 1 << 2,
    CONFIG_LOG_DEST_SYSLOG = 1 << 3,
    CONFIG_LOG_DEST_TOPIC = 1 << 4, /* $SYS/broker/log/...: accepted, the broker publishes */
};

struct config {
    /* ---- listeners ---- */
    struct config_listener *listeners; /* in declaration order; never empty after load */
    size_t listener_count;
    bool local_only;        /* no listener in the file: mosquitto 2's local-only mode */
    bool cmd_ports_ignored; /* -p was given but the file defines listeners (mosquitto 2
                               ignores -p then too); the broker should warn */

    /* ---- security ---- */
    bool per_listener_settings;
    struct config_security security; /* the global values (before per-listener resolution) */

    /* ---- persistence ---- */
    bool persistence;            /* false: the broker uses a temporary dir removed at exit */
    char *persistence_location;  /* default "./starling-data" */
    char *persistence_file;      /* accepted for compatibility; unused (default "mosquitto.db") */
    int32_t autosave_interval_s; /* accepted, unused: state is committed continuously */
    bool autosave_on_changes;    /* accepted, unused */

    /* ---- logging (see log.h) ---- */
    unsigned log_dest;          /* enum config_log_dest bits; default STDERR */
    char *log_file;             /* with CONFIG_LOG_DEST_FILE */
    unsigned log_types;         /* enum log_type bits (log.h) */
    int log_facility;           /* syslog facility number 0..7 for LOG_LOCALn; -1 = LOG_DAEMON */
    bool connection_messages;   /* default true */
    bool log_timestamp;         /* default true */
    char *log_timestamp_format; /* strftime format; NULL: seconds since the epoch */

    /* ---- limits and MQTT behaviour ---- */
    uint16_t max_inflight_messages;          /* default 20; 0 means 65535 (no limit) */
    uint64_t max_inflight_bytes;             /* default 0 (no limit) */
    uint32_t max_queued_messages;            /* default 1000; 0 = no limit */
    uint64_t max_queued_bytes;               /* default 0 (no limit) */
    bool queue_qos0_messages;                /* default false */
    uint32_t message_size_limit;             /* default 0 = 268435455 (the MQTT maximum) */
    uint32_t max_packet_size;                /* default 0 = no limit beyond the protocol's */
    uint16_t max_keepalive;                  /* default 65535 */
    uint16_t max_topic_alias;                /* value before any listener: use the listener's */
    uint64_t persistent_client_expiration_s; /* default 0 = never expire */
    bool retain_available;                   /* default true */
    uint8_t max_qos;                         /* value before any listener: use the listener's */
    bool upgrade_outgoing_qos;               /* default false */
    bool check_retain_source;                /* default false; accepted, unused */
    bool set_tcp_nodelay;                    /* accepted; Starling always sets TCP_NODELAY */
    uint32_t sys_interval_s;                 /* default 10; 0 = no $SYS updates */

    /* ---- process ---- */
    char *pid_file;    /* NULL: none */
    char *user;        /* default "mosquitto": user to drop to when started as root */
    bool daemon;       /* -d */
    bool verbose;      /* -v: log_types was forced to all */
    char *config_file; /* the -c file, NULL without one */

    /* ---- cluster ---- */
    uint32_t node_id;        /* default 1 */
    bool node_id_set;        /* node_id was given (required with cluster_peers or cluster_join) */
    bool cluster_listen_set; /* cluster_listen given */
    uint16_t cluster_port;   /* default 7700 */
    char *cluster_bind_address;        /* NULL: all interfaces */
    bool cluster_advertise_set;        /* cluster_advertise given */
    char *cluster_advertise_host;      /* what peers dial: the directive's host; without it, the
                                          bind address, else this machine's host name */
    uint16_t cluster_advertise_port;   /* the directive's port; without it, cluster_port */
    struct config_peer *cluster_peers; /* cluster_peers entries, in order; ids are unique */
    size_t cluster_peer_count;
    char *cluster_join_host; /* cluster_join HOST:PORT; NULL without */
    uint16_t cluster_join_port;
    char *cluster_secret_file; /* NULL without */
    uint8_t *cluster_secret;   /* the file's contents, trailing white space removed; never
                                  empty when set */
    size_t cluster_secret_len;
    char *cluster_cafile; /* cluster TLS: all three set or none (checked at load) */
    char *cluster_certfile;
    char *cluster_keyfile;
    char *cluster_ca_pem; /* the three files' contents, read at load (NUL-terminated) */
    size_t cluster_ca_pem_len;
    char *cluster_cert_pem;
    size_t cluster_cert_pem_len;
    char *cluster_key_pem; /* wiped when freed */
    size_t cluster_key_pem_len;

    /* ---- admin HTTP API ---- */
    bool admin_listener_set;  /* admin_listener given: the broker serves the admin API */
    uint16_t admin_port;      /* default 8088 */
    char *admin_bind_address; /* default "127.0.0.1"; never NULL after load */
    char *admin_token_file;   /* NULL: no token, every call is allowed */
    char *admin_token;        /* the bearer token read from admin_token_file, or NULL */
    char *admin_certfile; /* HTTPS: certfile and keyfile together (checked at load); NULL: HTTP */
    char *admin_keyfile;
    char *admin_cafile;   /* client certificates signed by it required; NULL: none asked */
    char *admin_cert_pem; /* the files' contents, read at load (NUL-terminated) */
    size_t admin_cert_pem_len;
    char *admin_key_pem; /* wiped when freed */
    size_t admin_key_pem_len;
    char *admin_ca_pem;
    size_t admin_ca_pem_len;
};

/* True when cluster_peers or cluster_join was given: the node is (or becomes) one member of
 * a cluster of several nodes. */
bool config_is_clustered(const struct config *cfg);

/* The command line: `starling [-c FILE] [-p PORT]... [-d] [-v] [-h]`. */
struct config_args {
    const char *config_file;              /* -c FILE (borrowed from argv); NULL without */
    uint16_t ports[CONFIG_MAX_CMD_PORTS]; /* -p PORT, up to 10 times */
    size_t port_count;
    bool daemon;  /* -d */
    bool verbose; /* -v */
    bool help;    /* -h: the caller prints config_usage() and exits 0 */
};

/* Fills *cfg with Mosquitto's defaults (Starling's where documented), no listeners yet.
 * Returns 0 or -ENOMEM (then *cfg needs no freeing). */
int config_defaults(struct config *cfg);

/* Parses argv into *out. Returns 0, or -EINVAL with a one-line message in err, without an
 * "Error: " prefix (unknown option, missing or invalid argument, more than 10 -p).
 * -h sets out->help and returns 0.
 * Strings in *out are borrowed from argv. */
int config_parse_args(int argc, char *const argv[], struct config_args *out, char *err,
                      size_t errlen);

/* The usage text printed for -h and after an argument error. Static storage. */
const char *config_usage(void);

/* Builds *out: defaults, then the file at `path` (NULL: no file), then `args` (NULL: none):
 * -p adds listeners (local-only listeners on 127.0.0.1/::1 when the file defines none, as
 * mosquitto 2 does), -v forces log_types to all, -d sets daemon.
 * Returns 0, or a negative errno with `FILE:LINE: DIRECTIVE: what is wrong` (or `FILE: ...`
 * when the file cannot be read) in err: -ENOENT/-EACCES/-EIO for unreadable files, -EINVAL for
 * a malformed or unknown line, -ENOTSUP for a directive Starling does not support yet,
 * -ENOMEM. On failure *out needs no freeing. */
int config_load(const char *path, const struct config_args *args, struct config *out, char *err,
                size_t errlen);

/* As config_load(), with the file's contents given as buf[0..len) and `name` used in
 * messages (and as the base of relative include_dir paths: none, they are used as given). */
int config_load_buffer(const char *name, const char *buf, size_t len,
                       const struct config_args *args, struct config *out, char *err,
                       size_t errlen);

/* Releases everything *cfg owns; *cfg may come from config_defaults() or config_load().
 * Safe on a zeroed struct. */
void config_free(struct config *cfg);

/* Parses a mosquitto duration (persistent_client_expiration): a positive integer followed by
 * h, d, w, m (30 days) or y (365 days), e.g. "2d". Returns 0, or -EINVAL (no unit, zero,
 * negative, overflow). */
int config_parse_duration(const char *text, uint64_t *out_s /* OUT */);

#endif
