/* TLS for client listeners (wolfSSL), driven by the caller's I/O: no socket is touched here.
 *
 * A struct tls_ctx holds one listener's certificates and verification settings (a wolfSSL
 * context). Connections keep the context they started with (reference counted), so a reload
 * swaps the listener's context for new connections only.
 *
 * A struct tls_conn is one connection's TLS state. Ciphertext read from the socket goes into
 * tls_conn_input(), which drives the handshake and hands every decrypted byte to the `deliver`
 * callback; ciphertext to send (handshake records, encrypted application data) is handed to
 * the `out` callback, which appends it to the connection's outgoing batch. Nothing blocks:
 * the handshake advances as bytes arrive.
 *
 * Errors are negative errno values with a one-line description in the caller's buffer. */
#ifndef STARLING_BROKER_TLS_H
#define STARLING_BROKER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_tls;
struct tls_ctx;
struct tls_conn;

/* Where ciphertext goes (append to the outgoing batch). Returns 0 or -ENOMEM. */
typedef int (*tls_out_fn)(void *arg, const uint8_t *data, size_t len);
/* Where plaintext goes. Returns 0, or < 0 when the connection ended (input stops). */
typedef int (*tls_deliver_fn)(void *arg, const uint8_t *data, size_t len);

/* Builds a context from a listener's settings (files are read now). Returns 0 or a negative
 * errno with `what is wrong` (naming the file) in err. */
int tls_ctx_new(const struct config_tls *cfg, struct tls_ctx **out, char *err, size_t errlen);
void tls_ctx_unref(struct tls_ctx *ctx);

/* A server context from PEM contents in memory (read before privileges were dropped): the
 * certificate chain and its key, and, when ca is not NULL, client certificates signed by ca
 * required. TLS 1.2 and later. The *_name strings name each one in err (a directive). */
struct tls_pem {
    const char *cert, *key, *ca;
    size_t cert_len, key_len, ca_len;
    const char *cert_name, *key_name, *ca_name;
};
int tls_ctx_new_pem(const struct tls_pem *pem, struct tls_ctx **out, char *err, size_t errlen);
/* Another reference to ctx (dropped with tls_ctx_unref). */
struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx);

/* A new connection's TLS state (takes a reference on ctx); NULL without memory. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, tls_out_fn out, void *arg);
void tls_conn_free(struct tls_conn *t);

/* Feeds ciphertext. Returns 0 (everything consumed; the handshake may still be going on),
 * or -EPROTO with why in err (handshake or record failure: close the connection), or the
 * deliver callback's negative value. */
int tls_conn_input(struct tls_conn *t, const uint8_t *data, size_t len, tls_deliver_fn deliver,
                   void *arg, char *err, size_t errlen);

/* Encrypts plaintext (only after the handshake). Returns 0, -ENOMEM or -EPROTO. */
int tls_conn_write(struct tls_conn *t, const uint8_t *data, size_t len);

/* Sends close_notify (best effort). */
void tls_conn_shutdown(struct tls_conn *t);

/* Whether the handshake has completed. */
bool tls_conn_established(const struct tls_conn *t);

/* The username the listener derives from the client certificate (use_identity_as_username:
 * the CN; use_subject_as_username: the subject), or NULL when neither applies. Valid after
 * the handshake. *missing is set when one applies but the client sent no usable certificate. */
const char *tls_conn_cert_username(const struct tls_conn *t, bool *missing);

/* "TLSv1.3" etc. for log lines. */
const char *tls_conn_version(const struct tls_conn *t);

#endif
