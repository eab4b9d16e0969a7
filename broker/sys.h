/* $SYS/broker/...: Mosquitto's statistics topics, published as retained messages every
 * sys_interval seconds (only values that changed), from this node's counters. They live in
 * the in-memory retained index only: they describe this process, not replicated state. */
#ifndef STARLING_BROKER_SYS_H
#define STARLING_BROKER_SYS_H

struct broker;

/* Publishes the static topics and starts the sys_interval timer (none when 0). */
void sys_start(struct broker *b);
/* Frees the $SYS state (the timer is closed with the broker's handles). */
void sys_free(struct broker *b);

#endif
