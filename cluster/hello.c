/* Encoding and HMAC of the cluster-port hello (hello.h). */
#include "hello.h"

#include <errno.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/random.h>
#include <xxhash.h>

/* HMAC needs a key: a cluster without a secret uses this fixed one (the hello still checks
 * the cluster name and version, but anyone can join; the broker warns about it). */
static const char NO_SECRET[] = "starling-cluster-without-secret";

uint64_t hello_cluster_id(const char *name)
{
    if (!name) name = "starling";
    return XXH3_64bits(name, strlen(name));
}

int hello_nonce(uint8_t out[HELLO_NONCE])
{
    WC_RNG rng;
    if (wc_InitRng(&rng) != 0) return -EIO;
    int rc = wc_RNG_GenerateBlock(&rng, out, HELLO_NONCE) == 0 ? 0 : -EIO;
    wc_FreeRng(&rng);
    return rc;
}

void hello_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

uint64_t hello_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

size_t hello_encode(const struct hello *h, uint8_t *out)
{
    size_t alen = strlen(h->addr);
    if (alen > HELLO_ADDR_MAX) return 0;
    memcpy(out, "STCH", 4);
    out[4] = HELLO_VERSION;
    out[5] = h->channel;
    out[6] = (uint8_t)(alen >> 8);
    out[7] = (uint8_t)alen;
    hello_put64(out + 8, h->cluster);
    hello_put64(out + 16, h->node_id);
    memcpy(out + 24, h->nonce, HELLO_NONCE);
    memcpy(out + HELLO_FIXED, h->addr, alen);
    return HELLO_FIXED + alen;
}

int hello_decode(const uint8_t *buf, size_t len, struct hello *out)
{
    if (len >= 4 && memcmp(buf, "STCH", 4) != 0) return -EPROTO;
    if (len < HELLO_FIXED) return 0;
    size_t alen = (size_t)buf[6] << 8 | buf[7];
    if (alen > HELLO_ADDR_MAX) return -EPROTO;
    if (len < HELLO_FIXED + alen) return 0;
    /* The version is checked by the caller, which answers it with a status. */
    out->channel = buf[5];
    out->cluster = hello_get64(buf + 8);
    out->node_id = hello_get64(buf + 16);
    memcpy(out->nonce, buf + 24, HELLO_NONCE);
    memcpy(out->addr, buf + HELLO_FIXED, alen);
    out->addr[alen] = '\0';
    if (memchr(out->addr, '\0', alen)) return -EPROTO;
    return (int)(HELLO_FIXED + alen);
}

int hello_mac(const uint8_t *secret, size_t secret_len, char tag, const uint8_t *hello,
              size_t hello_len, const uint8_t *extra, size_t extra_len, uint8_t out[HELLO_MAC])
{
    if (!secret || secret_len == 0) {
        secret = (const uint8_t *)NO_SECRET;
        secret_len = sizeof NO_SECRET - 1;
    }
    Hmac hmac;
    uint8_t t = (uint8_t)tag;
    int rc = wc_HmacInit(&hmac, NULL, INVALID_DEVID);
    if (rc != 0) return -EIO;
    rc = wc_HmacSetKey(&hmac, WC_SHA256, secret, (word32)secret_len);
    if (rc == 0) rc = wc_HmacUpdate(&hmac, &t, 1);
    if (rc == 0) rc = wc_HmacUpdate(&hmac, hello, (word32)hello_len);
    if (rc == 0 && extra_len) rc = wc_HmacUpdate(&hmac, extra, (word32)extra_len);
    if (rc == 0) rc = wc_HmacFinal(&hmac, out);
    wc_HmacFree(&hmac);
    return rc == 0 ? 0 : -EIO;
}

bool hello_mac_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;
    for (unsigned i = 0; i < HELLO_MAC; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}
