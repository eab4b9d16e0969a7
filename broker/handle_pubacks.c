/* PUBACK, PUBREC, PUBREL, PUBCOMP: the QoS 1 and QoS 2 flows in both directions. */
#include "conn.h"
#include "handle.h"
#include "session.h"

void handle_puback(struct conn *c, const struct mqtt_packet *pkt)
{
    session_on_puback(c->sess, pkt->u.ack.packet_id);
}

void handle_pubrec(struct conn *c, const struct mqtt_packet *pkt)
{
    session_on_pubrec(c->sess, pkt->u.ack.packet_id, pkt->u.ack.reason);
}

void handle_pubrel(struct conn *c, const struct mqtt_packet *pkt)
{
    uint16_t pid = pkt->u.ack.packet_id;
    /* [MQTT-4.3.3-9..11]: PUBCOMP in any case; v5 says whether the id was known. */
    bool known = session_qos2_in_remove(c->sess, pid);
    conn_send_ack(c, MQTT_PUBCOMP, pid, known ? 0 : MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
}

void handle_pubcomp(struct conn *c, const struct mqtt_packet *pkt)
{
    session_on_pubcomp(c->sess, pkt->u.ack.packet_id);
}
