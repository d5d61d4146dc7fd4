/* notify.h -- telling the service manager where the server stands (notify.c): systemd's
 * readiness protocol (sd_notify(3)) for Type=notify services, and its watchdog.
 *
 * When the manager starts the server it sets NOTIFY_SOCKET, an AF_UNIX datagram socket (a path,
 * or "@name" for the abstract namespace); each state is one datagram of "KEY=value" lines. The
 * watchdog asks for WATCHDOG=1 at least every WATCHDOG_USEC microseconds (for the process
 * WATCHDOG_PID names, when set). Without NOTIFY_SOCKET every call does nothing. */
#ifndef ASIDE_SERVER_NOTIFY_H
#define ASIDE_SERVER_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Send state (e.g. "READY=1", "STOPPING=1", lines separated by '\n') to NOTIFY_SOCKET. True
 * when sent, false without a socket or when sending failed (the server goes on either way:
 * the service manager's timeouts handle a manager that did not hear). */
bool     notify_send(const char *state);
/* How often to send WATCHDOG=1, in milliseconds: half of WATCHDOG_USEC, as sd_watchdog_enabled
 * advises; 0 when no watchdog asks for this process. */
uint64_t notify_watchdog_interval_ms(void);

#endif
