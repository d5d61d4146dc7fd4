/* notify.c -- systemd's notification protocol, spoken directly (notify.h).
 *
 * The protocol is a documented interface of systemd (sd_notify(3), "The notification
 * protocol"): a datagram of newline-separated assignments sent to the AF_UNIX socket
 * NOTIFY_SOCKET names; a name starting with '@' is in the abstract namespace. It is a few
 * system calls, so the server speaks it itself rather than linking libsystemd: no library to
 * install, package or find in a container, and the same binary runs where systemd is absent.
 * Reads of the environment here are the service manager's protocol, not configuration. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

bool notify_send(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = name ? strlen(name) : 0;
    if (len < 2 || len >= sizeof addr.sun_path || (name[0] != '/' && name[0] != '@'))
        return false;
    memcpy(addr.sun_path, name, len);
    if (name[0] == '@')
        addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                                     (name[0] == '/'));
    ssize_t sent;
    do
        sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
                      addr_len);
    while (sent < 0 && errno == EINTR);
    close(fd);
    return sent == (ssize_t)strlen(state);
}

uint64_t notify_watchdog_interval_ms(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    if (!usec || !*usec || !getenv("NOTIFY_SOCKET"))
        return 0;
    char *end = NULL;
    if (pid && *pid && (strtol(pid, &end, 10) != (long)getpid() || *end))
        return 0;
    unsigned long long us = strtoull(usec, &end, 10);
    if (*end || us == 0)
        return 0;
    uint64_t ms = us / 2000;
    return ms ? ms : 1;
}
