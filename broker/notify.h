/* Readiness notification for a service manager (systemd's Type=notify protocol). */
#ifndef STARLING_BROKER_NOTIFY_H
#define STARLING_BROKER_NOTIFY_H

/* Sends state (e.g. "READY=1", "STOPPING=1") as one datagram to the AF_UNIX socket named by
 * $NOTIFY_SOCKET ('@' first for an abstract address). Without $NOTIFY_SOCKET it does nothing.
 * Returns 0, or -errno (the caller may ignore it: readiness is advisory). */
int notify_service_manager(const char *state);

#endif
