/* TLS for client listeners with wolfSSL and caller-driven I/O (see tls.h). */
/* clang-format off */
#include <wolfssl/options.h> /* first: the library's build options (structure layouts) */
/* clang-format on */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/error-ssl.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "config.h"

struct tls_ctx {
    WOLFSSL_CTX *ctx;
    int refs;
    bool identity; /* use_identity_as_username */
    bool subject;  /* use_subject_as_username */
};

struct tls_conn {
    struct tls_ctx *ctx;
    WOLFSSL *ssl;
    const uint8_t *in; /* ciphertext not yet taken by the library (the caller's buffer) */
    size_t inlen;
    tls_out_fn out;
    void *arg;
    bool established;
    bool started;      /* the first byte was seen */
    bool cert_missing; /* a certificate username applies but none could be taken */
    char *cert_user;   /* owned */
};

static int tls_recv_cb(WOLFSSL *ssl, char *buf, int sz, void *vctx)
{
    struct tls_conn *t = vctx;
    (void)ssl;
    if (t->inlen == 0) return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = t->inlen < (size_t)sz ? t->inlen : (size_t)sz;
    memcpy(buf, t->in, n);
    t->in += n;
    t->inlen -= n;
    return (int)n;
}

static int tls_send_cb(WOLFSSL *ssl, char *buf, int sz, void *vctx)
{
    struct tls_conn *t = vctx;
    (void)ssl;
    if (t->out(t->arg, (const uint8_t *)buf, (size_t)sz) < 0) return WOLFSSL_CBIO_ERR_GENERAL;
    return sz;
}

static void tls_library_init(void)
{
    static bool done;
    if (!done) {
        wolfSSL_Init();
        done = true;
    }
}

int tls_ctx_new(const struct config_tls *cfg, struct tls_ctx **out, char *err, size_t errlen)
{
    tls_library_init();
    *out = NULL;
    WOLFSSL_METHOD *method;
    switch (cfg->version) {
    case CONFIG_TLS_1_2:
        method = wolfTLSv1_2_server_method();
        break;
    case CONFIG_TLS_1_3:
        method = wolfTLSv1_3_server_method();
        break;
    default:
        method = wolfSSLv23_server_method();
        break;
    }
    WOLFSSL_CTX *ctx = method ? wolfSSL_CTX_new(method) : NULL;
    struct tls_ctx *c = calloc(1, sizeof *c);
    if (!ctx || !c) {
        if (ctx) wolfSSL_CTX_free(ctx);
        free(c);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->ctx = ctx;
    c->refs = 1;
    c->identity = cfg->use_identity_as_username;
    c->subject = cfg->use_subject_as_username;
    int rc = 0;
    if (cfg->version == CONFIG_TLS_ANY && wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != 1) {
        snprintf(err, errlen, "cannot restrict TLS to 1.2 and later");
        rc = -EINVAL;
    } else if (wolfSSL_CTX_use_certificate_chain_file(ctx, cfg->certfile) != 1) {
        snprintf(err, errlen, "cannot load certfile %s (a PEM certificate)", cfg->certfile);
        rc = -EINVAL;
    } else if (wolfSSL_CTX_use_PrivateKey_file(ctx, cfg->keyfile, WOLFSSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "cannot load keyfile %s (a PEM key without password)", cfg->keyfile);
        rc = -EINVAL;
    } else if (wolfSSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "keyfile %s does not match certfile %s", cfg->keyfile, cfg->certfile);
        rc = -EINVAL;
    } else if ((cfg->cafile || cfg->capath) &&
               wolfSSL_CTX_load_verify_locations(ctx, cfg->cafile, cfg->capath) != 1) {
        snprintf(err, errlen, "cannot load CA certificates from %s%s%s",
                 cfg->cafile ? cfg->cafile : "", cfg->cafile && cfg->capath ? " and " : "",
                 cfg->capath ? cfg->capath : "");
        rc = -EINVAL;
    } else if (cfg->crlfile &&
               (wolfSSL_CTX_EnableCRL(ctx, WOLFSSL_CRL_CHECKALL) != 1 ||
                wolfSSL_CTX_LoadCRLFile(ctx, cfg->crlfile, WOLFSSL_FILETYPE_PEM) != 1)) {
        snprintf(err, errlen, "cannot load crlfile %s (a PEM CRL)", cfg->crlfile);
        rc = -EINVAL;
    }
    if (rc == 0 && (cfg->ciphers || cfg->ciphers_tls13)) {
        /* wolfSSL takes the TLS 1.2 and 1.3 suites in one list. */
        size_t n = (cfg->ciphers ? strlen(cfg->ciphers) : 0) +
                   (cfg->ciphers_tls13 ? strlen(cfg->ciphers_tls13) : 0) + 2;
        char *list = malloc(n);
        if (!list) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
        } else {
            snprintf(list, n, "%s%s%s", cfg->ciphers_tls13 ? cfg->ciphers_tls13 : "",
                     cfg->ciphers && cfg->ciphers_tls13 ? ":" : "",
                     cfg->ciphers ? cfg->ciphers : "");
            if (wolfSSL_CTX_set_cipher_list(ctx, list) != 1) {
                snprintf(err, errlen, "no usable cipher in '%s'", list);
                rc = -EINVAL;
            }
            free(list);
        }
    }
    if (rc < 0) {
        tls_ctx_unref(c);
        return rc;
    }
    wolfSSL_CTX_set_verify(ctx,
                           cfg->require_certificate
                               ? WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT
                               : WOLFSSL_VERIFY_NONE,
                           NULL);
    wolfSSL_CTX_SetIORecv(ctx, tls_recv_cb);
    wolfSSL_CTX_SetIOSend(ctx, tls_send_cb);
    *out = c;
    return 0;
}

int tls_ctx_new_pem(const struct tls_pem *pem, struct tls_ctx **out, char *err, size_t errlen)
{
    tls_library_init();
    *out = NULL;
    WOLFSSL_METHOD *method = wolfSSLv23_server_method();
    WOLFSSL_CTX *ctx = method ? wolfSSL_CTX_new(method) : NULL;
    struct tls_ctx *c = calloc(1, sizeof *c);
    if (!ctx || !c) {
        if (ctx) wolfSSL_CTX_free(ctx);
        free(c);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->ctx = ctx;
    c->refs = 1;
    int rc = 0;
    if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != 1) {
        snprintf(err, errlen, "cannot restrict TLS to 1.2 and later");
        rc = -EINVAL;
    } else if (wolfSSL_CTX_use_certificate_chain_buffer_format(
                   ctx, (const unsigned char *)pem->cert, (long)pem->cert_len,
                   WOLFSSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "%s: not a PEM certificate", pem->cert_name);
        rc = -EINVAL;
    } else if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, (const unsigned char *)pem->key,
                                                 (long)pem->key_len, WOLFSSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "%s: not a PEM key without password", pem->key_name);
        rc = -EINVAL;
    } else if (wolfSSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s does not match %s", pem->key_name, pem->cert_name);
        rc = -EINVAL;
    } else if (pem->ca != NULL &&
               wolfSSL_CTX_load_verify_buffer(ctx, (const unsigned char *)pem->ca,
                                              (long)pem->ca_len, WOLFSSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "%s: no PEM CA certificate", pem->ca_name);
        rc = -EINVAL;
    }
    if (rc < 0) {
        tls_ctx_unref(c);
        return rc;
    }
    wolfSSL_CTX_set_verify(ctx,
                           pem->ca != NULL
                               ? WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT
                               : WOLFSSL_VERIFY_NONE,
                           NULL);
    wolfSSL_CTX_SetIORecv(ctx, tls_recv_cb);
    wolfSSL_CTX_SetIOSend(ctx, tls_send_cb);
    *out = c;
    return 0;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *c)
{
    c->refs++;
    return c;
}

void tls_ctx_unref(struct tls_ctx *c)
{
    if (!c || --c->refs > 0) return;
    wolfSSL_CTX_free(c->ctx);
    free(c);
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, tls_out_fn out, void *arg)
{
    struct tls_conn *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ssl = wolfSSL_new(ctx->ctx);
    if (!t->ssl) {
        free(t);
        return NULL;
    }
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    t->ctx = ctx;
    ctx->refs++;
    t->out = out;
    t->arg = arg;
    return t;
}

void tls_conn_free(struct tls_conn *t)
{
    if (!t) return;
    wolfSSL_free(t->ssl);
    tls_ctx_unref(t->ctx);
    free(t->cert_user);
    free(t);
}

bool tls_conn_established(const struct tls_conn *t)
{
    return t->established;
}

const char *tls_conn_version(const struct tls_conn *t)
{
    return wolfSSL_get_version(t->ssl);
}

/* A log-friendly description of a failed handshake or record. */
static void tls_describe(struct tls_conn *t, int code, char *err, size_t errlen)
{
    const char *what = NULL;
    switch (code) {
    case ASN_AFTER_DATE_E:
        what = "client certificate expired";
        break;
    case ASN_BEFORE_DATE_E:
        what = "client certificate not yet valid";
        break;
    case ASN_NO_SIGNER_E:
    case ASN_SIG_CONFIRM_E:
        what = "client certificate not signed by a trusted CA";
        break;
    case NO_PEER_CERT:
        what = "no client certificate (require_certificate is true)";
        break;
    case CRL_CERT_REVOKED:
        what = "client certificate revoked";
        break;
    case VERSION_ERROR:
        what = "TLS version not allowed on this listener";
        break;
    case MATCH_SUITE_ERROR:
        what = "no cipher suite in common";
        break;
    default:
        break;
    }
    char lib[128];
    wolfSSL_ERR_error_string_n((unsigned long)code, lib, sizeof lib);
    (void)t;
    if (what)
        snprintf(err, errlen, "TLS handshake failed: %s (%d: %s)", what, code, lib);
    else
        snprintf(err, errlen, "TLS %s failed (%d: %s)", t->established ? "record" : "handshake",
                 code, lib);
}

/* After the handshake: the username the listener takes from the certificate. */
static void tls_cert_identity(struct tls_conn *t)
{
    if (!t->ctx->identity && !t->ctx->subject) return;
    WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(t->ssl);
    if (!x) {
        t->cert_missing = true;
        return;
    }
    WOLFSSL_X509_NAME *name = wolfSSL_X509_get_subject_name(x);
    if (t->ctx->identity) {
        char cn[256];
        int n = name ? wolfSSL_X509_NAME_get_text_by_NID(name, NID_commonName, cn, sizeof cn) : -1;
        if (n > 0) t->cert_user = strdup(cn);
    } else if (name) {
        WOLFSSL_BIO *bio = wolfSSL_BIO_new(wolfSSL_BIO_s_mem());
        if (bio && wolfSSL_X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) == 1) {
            char *p = NULL;
            long n = wolfSSL_BIO_get_mem_data(bio, &p);
            if (n > 0 && p && (t->cert_user = malloc((size_t)n + 1)) != NULL) {
                /* wolfSSL separates the RDNs with ", ", OpenSSL (and so Mosquitto's ACLs)
                 * with ",": drop the space after an unescaped comma. */
                size_t o = 0;
                for (long i = 0; i < n; i++) {
                    t->cert_user[o++] = p[i];
                    if (p[i] == ',' && (i == 0 || p[i - 1] != '\\') && i + 1 < n && p[i + 1] == ' ')
                        i++;
                }
                t->cert_user[o] = '\0';
            }
        }
        if (bio) wolfSSL_BIO_free(bio);
    }
    if (!t->cert_user) t->cert_missing = true;
    wolfSSL_X509_free(x);
}

const char *tls_conn_cert_username(const struct tls_conn *t, bool *missing)
{
    *missing = t->cert_missing;
    return t->cert_user;
}

int tls_conn_input(struct tls_conn *t, const uint8_t *data, size_t len, tls_deliver_fn deliver,
                   void *arg, char *err, size_t errlen)
{
    if (len == 0) return 0;
    if (!t->started) {
        t->started = true;
        /* A TLS connection opens with a handshake record (content type 22). */
        if (data[0] != 0x16) {
            snprintf(err, errlen,
                     "TLS handshake failed: not a TLS client hello (plain MQTT "
                     "on a TLS port?)");
            return -EPROTO;
        }
    }
    t->in = data;
    t->inlen = len;
    int rc = 0;
    if (!t->established) {
        int r = wolfSSL_accept(t->ssl);
        if (r != WOLFSSL_SUCCESS) {
            int e = wolfSSL_get_error(t->ssl, r);
            if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) goto out;
            tls_describe(t, e, err, errlen);
            rc = -EPROTO;
            goto out;
        }
        t->established = true;
        tls_cert_identity(t);
    }
    for (;;) {
        uint8_t buf[16384];
        int n = wolfSSL_read(t->ssl, buf, sizeof buf);
        if (n > 0) {
            rc = deliver(arg, buf, (size_t)n);
            if (rc < 0) goto out;
            continue;
        }
        int e = wolfSSL_get_error(t->ssl, n);
        if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) break;
        if (e == WOLFSSL_ERROR_ZERO_RETURN) {
            snprintf(err, errlen, "TLS closed by the client");
            rc = -EPIPE;
            break;
        }
        tls_describe(t, e, err, errlen);
        rc = -EPROTO;
        break;
    }
out:
    t->in = NULL;
    t->inlen = 0;
    return rc;
}

int tls_conn_write(struct tls_conn *t, const uint8_t *data, size_t len)
{
    if (!t->established) return -EPROTO;
    while (len > 0) {
        int chunk = len > 1 << 30 ? 1 << 30 : (int)len;
        int n = wolfSSL_write(t->ssl, data, chunk);
        if (n <= 0) return -EPROTO;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

void tls_conn_shutdown(struct tls_conn *t)
{
    if (t->established) wolfSSL_shutdown(t->ssl);
}
