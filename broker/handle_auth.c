/* AUTH (MQTT 5 enhanced authentication): no method is supported, so any AUTH is refused with
 * 0x8C Bad authentication method (CONNECT with an Authentication Method is refused the same
 * way in handle_connect.c). */
#include "conn.h"
#include "handle.h"

void handle_auth(struct conn *c, const struct mqtt_packet *pkt)
{
    (void)pkt;
    conn_close(c, MQTT_RC_BAD_AUTHENTICATION_METHOD, "unsupported authentication method");
}
