/* DISCONNECT from a client: a normal end discards the will; v5 may carry 0x04 (send the will)
 * and a new Session Expiry Interval. */
#include "conn.h"
#include "handle.h"
#include "session.h"

void handle_disconnect(struct conn *c, const struct mqtt_packet *pkt)
{
    struct session *s = c->sess;
    uint8_t reason = c->version == MQTT_V5 ? pkt->u.disconnect.reason : 0;
    if (c->version == MQTT_V5 && (pkt->props.present & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY))) {
        uint32_t e = pkt->props.session_expiry_s;
        if (s && s->expiry_s == 0 && e != 0) {
            /* [MQTT-3.14.2-2]: zero at CONNECT cannot become non-zero. */
            conn_close(c, MQTT_RC_PROTOCOL_ERROR, "session expiry set after zero");
            return;
        }
        if (s) {
            s->expiry_s = e;
            s->persistent = e > 0;
        }
    }
    if (reason == MQTT_RC_SUCCESS) {
        conn_drop(c, MQTT_RC_SUCCESS, NULL);
        return;
    }
    /* 0x04 and error reasons from the client: the will is sent. */
    conn_drop(c, reason == MQTT_RC_DISCONNECT_WITH_WILL ? MQTT_RC_DISCONNECT_WITH_WILL : reason,
              "client sent DISCONNECT with a reason");
}
