/* MQTT over WebSocket (RFC 6455, subprotocol `mqtt`), driven by the caller's I/O: no socket is
 * touched here.
 *
 * A struct ws_conn first reads the HTTP/1.1 upgrade request (parsed with http-parser), answers
 * 101 with Sec-WebSocket-Accept (SHA-1 and base64 from wolfCrypt) or 400 and an error, then
 * passes frames through wslay: the payload of every binary message goes to the `deliver`
 * callback (MQTT packets may span messages and a message may hold several: the caller's
 * incremental parser takes the bytes as a stream). Bytes to send go to the `out` callback
 * (the connection's outgoing batch, or TLS). */
#ifndef STARLING_BROKER_WS_H
#define STARLING_BROKER_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ws_conn;

/* Where bytes to send go. Returns 0 or -ENOMEM. */
typedef int (*ws_out_fn)(void *arg, const uint8_t *data, size_t len);
/* Where received MQTT bytes go. Returns 0, or < 0 when the connection ended. */
typedef int (*ws_deliver_fn)(void *arg, const uint8_t *data, size_t len);

/* A new connection waiting for its upgrade request; messages longer than max_msg are refused
 * (the connection closes). NULL without memory. */
struct ws_conn *ws_conn_new(ws_out_fn out, void *arg, size_t max_msg);
void ws_conn_free(struct ws_conn *w);

/* Feeds received bytes. Returns 0; -EPROTO with why in err (a malformed upgrade, answered with
 * 400, or a malformed frame or a text frame, answered with a close frame): close the
 * connection once the output is flushed; -EPIPE when the client closed the WebSocket; or the
 * deliver callback's negative value. */
int ws_conn_input(struct ws_conn *w, const uint8_t *data, size_t len, ws_deliver_fn deliver,
                  void *arg, char *err, size_t errlen);

/* Sends data as one binary message (after the upgrade). Returns 0, -ENOMEM or -EPIPE. */
int ws_conn_write(struct ws_conn *w, const uint8_t *data, size_t len);

/* Sends a close frame (1000) if the WebSocket is open and none was sent. */
void ws_conn_shutdown(struct ws_conn *w);

#endif
