/* PINGREQ -> PINGRESP, and the packet dispatcher. */
#include <stdio.h>

#include "conn.h"
#include "handle.h"

void handle_pingreq(struct conn *c, const struct mqtt_packet *pkt)
{
    (void)pkt;
    struct mqtt_packet resp = {.type = MQTT_PINGRESP};
    conn_send(c, &resp);
}

void handle_packet(struct conn *c, const struct mqtt_packet *pkt)
{
    conn_touch(c);
    if (c->state == CONN_NEW) {
        if (pkt->type != MQTT_CONNECT) {
            /* [MQTT-3.1.0-1]: the first packet must be CONNECT. */
            conn_close(c, MQTT_RC_PROTOCOL_ERROR, "first packet is not CONNECT");
            return;
        }
        handle_connect(c, pkt);
        return;
    }
    if (c->state != CONN_ACTIVE) {
        conn_close(c, MQTT_RC_PROTOCOL_ERROR, "packet before CONNACK");
        return;
    }
    switch (pkt->type) {
    case MQTT_CONNECT:
        /* [MQTT-3.1.0-2]: a second CONNECT is a protocol violation. */
        conn_close(c, MQTT_RC_PROTOCOL_ERROR, "second CONNECT");
        break;
    case MQTT_PUBLISH:
        handle_publish(c, pkt);
        break;
    case MQTT_PUBACK:
        handle_puback(c, pkt);
        break;
    case MQTT_PUBREC:
        handle_pubrec(c, pkt);
        break;
    case MQTT_PUBREL:
        handle_pubrel(c, pkt);
        break;
    case MQTT_PUBCOMP:
        handle_pubcomp(c, pkt);
        break;
    case MQTT_SUBSCRIBE:
        handle_subscribe(c, pkt);
        break;
    case MQTT_UNSUBSCRIBE:
        handle_unsubscribe(c, pkt);
        break;
    case MQTT_PINGREQ:
        handle_pingreq(c, pkt);
        break;
    case MQTT_DISCONNECT:
        handle_disconnect(c, pkt);
        break;
    case MQTT_AUTH:
        handle_auth(c, pkt);
        break;
    default: {
        char why[64];
        snprintf(why, sizeof why, "unexpected packet type %u", pkt->type);
        conn_close(c, MQTT_RC_PROTOCOL_ERROR, why);
        break;
    }
    }
}
