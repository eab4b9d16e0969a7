/* Packet handlers, one file per packet type (handle_<type>.c), and the dispatcher. Each
 * handler takes a parsed packet that points into the read buffer (valid only during the call:
 * anything kept is copied) and either answers it or ends the connection through conn_close()
 * with the reason code the specification names. */
#ifndef STARLING_BROKER_HANDLE_H
#define STARLING_BROKER_HANDLE_H

#include "proto.h"

struct conn;

/* Dispatches one packet by type; enforces "CONNECT first and only once". */
void handle_packet(struct conn *c, const struct mqtt_packet *pkt);

void handle_connect(struct conn *c, const struct mqtt_packet *pkt);
void handle_publish(struct conn *c, const struct mqtt_packet *pkt);
void handle_puback(struct conn *c, const struct mqtt_packet *pkt);
void handle_pubrec(struct conn *c, const struct mqtt_packet *pkt);
void handle_pubrel(struct conn *c, const struct mqtt_packet *pkt);
void handle_pubcomp(struct conn *c, const struct mqtt_packet *pkt);
void handle_subscribe(struct conn *c, const struct mqtt_packet *pkt);
void handle_unsubscribe(struct conn *c, const struct mqtt_packet *pkt);
void handle_pingreq(struct conn *c, const struct mqtt_packet *pkt);
void handle_disconnect(struct conn *c, const struct mqtt_packet *pkt);
void handle_auth(struct conn *c, const struct mqtt_packet *pkt);

#endif
