/* http.c -- the HTTP/1.1 server: one epoll loop per worker thread.
 *
 * Each worker owns a listening socket bound with SO_REUSEPORT to the same address, so the
 * kernel spreads connections over workers and no lock is shared between them; when configured,
 * each also watches its copy of one Unix listening socket (the API of sandboxed functions,
 * which have no network), served the same way. A connection belongs to one worker for its life. Requests are parsed by Debian's http-parser straight from
 * the connection's input buffer: the parser pauses at the end of each message, the handler runs,
 * the response is written, then parsing resumes on whatever the client pipelined behind it.
 * While a response is being written the connection stops reading (back-pressure).
 *
 * Responses avoid copies: a small body is appended to the header block and leaves in one write;
 * a cached value's bytes go out with writev straight from the value; a value that lives in a
 * disk-tier file goes out with sendfile. The value stays referenced until the last byte left.
 *
 * Timeouts (checked once a second by a sweep of the worker's connections): a request must be
 * complete within request_timeout_ms of its first byte and a response must make progress at
 * least that often; a keep-alive connection with nothing to do is closed after
 * idle_timeout_ms. So a slow or half-open client only ever ties up its own connection.
 *
 * Resources, as nginx and Redis guard them: the connections of all workers are counted against
 * max_connections (a slot is taken before accept, given back when the connection closes). A
 * worker that finds no free slot takes its listening socket out of its epoll set, so the
 * kernel queues new clients and the loop sleeps instead of being woken for them over and over;
 * the close that frees a slot at the cap wakes every worker (through its done_fd) to watch its
 * socket again. When accept fails for lack of descriptors (EMFILE, ENFILE) the worker stops
 * accepting for ACCEPT_RETRY_MS: retrying at once would spin, as the socket stays readable.
 * A request body is received in place in the input buffer (a chunked one is decoded into a
 * buffer of its own) and its bytes are counted against max_bodies_in_flight_bytes from its
 * headers on, before any of it is read: a body that does not fit now is answered 503 with
 * Retry-After (413 when it could never fit) and the connection closed; the bytes are given
 * back, and a buffer grown for a large body freed, once the handler is done with the body,
 * before the response leaves.
 *
 * Draining (http_server_drain, on SIGTERM once the drain time is over): every worker closes
 * its listening socket, so new clients are refused, and closes its idle connections; a
 * connection with a request in flight (arriving, waiting for the pool, or its response being
 * written, however slowly the client reads) is served to the end and then closed, its response
 * saying "Connection: close". The caller watches http_server_connections fall to zero, up to its
 * own deadline, before http_server_stop.
 *
 * A request's record (http_record) follows it from its first byte: its id (the client's
 * X-Request-Id when sane, else made from a random prefix and a count: no printf, no random draw
 * per request), sent in every response, ours included; the bytes written; the handler's part
 * (function, key, token name, source) through res->record. request_end, when the response's
 * last byte left or the connection closed under it, is the one place a request ends: it hands
 * the record to the access log (access_log.h).
 *
 * Why one file of this size: it is one concept, a connection's life on a worker's loop, and its
 * parts (parser callbacks, response writing, the blocking pool's hand-back, accept and its
 * limits, the drain) all read and write the same private struct conn and struct worker, whose
 * invariants (back-pressure, the slot and body-budget accounting, deferred requests out of
 * epoll) hold only if no other file touches them. Split, they would need those structs in a
 * header every part could change. The sections below follow a connection from accept to
 * close. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "http.h"

static void segments_release(http_segments *s)
{
    if (s->release)
        s->release(s->owner);
    memset(s, 0, sizeof *s);
}

enum {
    INPUT_INITIAL_BYTES = 4096,
    HEADER_MAX_BYTES = 64 * 1024, /* request line and headers */
    MAX_HEADERS = 64,
    EVENTS_PER_WAIT = 256,
    SWEEP_INTERVAL_MS = 1000,
    LISTEN_BACKLOG = 4096,
    ACCEPT_RETRY_MS = 500,    /* out of descriptors: stop accepting this long (nginx's pause) */
    WARN_INTERVAL_MS = 10000, /* a worker repeats a warning about its limits at most this often */
    INPUT_KEEP_BYTES = HEADER_MAX_BYTES, /* an input buffer grown past this for a body is given
                                            back when the message is done */
    REQUEST_ID_PREFIX_LEN = 16 /* hexadecimal digits of the random part of the ids we make */
};

typedef struct header_span {
    size_t name_off, name_len, value_off, value_len;
} header_span;

typedef struct worker worker;

typedef struct conn {
    int          fd;
    worker      *w;
    struct conn *prev, *next; /* the worker's connections */
    http_parser  parser;
    /* input: in[0..parsed) is the current message so far, in[parsed..in_len) not parsed yet */
    char        *in;
    size_t       in_len, in_cap, parsed;
    /* the message being parsed */
    size_t       url_off, url_len;
    header_span  headers[MAX_HEADERS];
    size_t       header_count;
    bool         header_in_value; /* the last callback was a header value */
    bool         header_skip;     /* past MAX_HEADERS: headers are ignored */
    size_t       body_off, body_len; /* the body: in[body_off..) when received in place */
    buf          body;            /* or a chunked body, decoded */
    uint64_t     body_reserved;   /* bytes counted against max_bodies_in_flight_bytes */
    bool         body_expected;   /* a Content-Length body is being received */
    int          body_refusal;    /* 413 or 503: the body is not received */
    bool         message_done;
    int64_t      message_started_ms;
    /* the response being written */
    buf          out;          /* status line, headers and, for buffer bodies, the body */
    size_t       out_sent;
    aside_value *out_value;    /* body from a value, after out */
    uint64_t     value_sent;
    http_segments out_segments; /* or body from segments, after out */
    size_t       segment_at;   /* the segment being sent, and bytes of it sent */
    size_t       segment_sent;
    bool         writing, close_after;
    int64_t      deadline_ms;
    /* a request handed to the blocking pool: it owns req and res until it hands them back */
    bool         deferred;
    struct conn *task_next;
    http_request req;
    http_header  req_headers[MAX_HEADERS];
    http_response res;
    /* the request's record, from its first byte (or the response of our own) to its end */
    http_record  record;
    bool         record_open; /* a response was composed: the request ends when it left */
    char         client[HTTP_CLIENT_MAX];
} conn;

struct worker {
    http_server *server;
    pthread_t    thread;
    int          epoll_fd, listen_fd, stop_fd;
    int          unix_fd; /* its copy of the Unix listening socket, or -1 */
    conn        *conns;
    /* requests the blocking pool has answered, for this worker to send */
    int             done_fd;
    pthread_mutex_t done_lock;
    conn           *done;
    char         date[64]; /* "Date: ...\r\n", refreshed once a second */
    time_t       date_sec;
    /* the listening socket is in the epoll set; when not, accept again once accept_retry_ms is
     * past (0: when a slot frees) */
    bool         accepting;
    bool         drained;     /* this worker has seen the drain: its listening socket closed */
    int64_t      accept_retry_ms;
    int64_t      warned_ms;
};

/* Requests waiting for a blocking-pool thread, first in first out. */
typedef struct task_queue {
    pthread_mutex_t lock;
    pthread_cond_t  ready;
    conn           *head, *tail;
    bool            stopping;
} task_queue;

struct http_server {
    http_config  cfg;
    http_handler handler;
    void        *ctx;
    int          port;
    int          worker_count;
    worker      *workers;
    task_queue   tasks;
    int          pool_count;
    pthread_t   *pool;
    atomic_int   connections;      /* open, all workers together: at most max_connections */
    atomic_int   max_connections;  /* may be lowered once the cache is open */
    _Atomic uint64_t body_bytes;   /* reserved by bodies being received */
    atomic_bool  stopping;
    atomic_bool  draining;         /* no new connections; each closes after its response */
    atomic_int   handlers_running; /* on the pool's threads, now */
    char         id_prefix[REQUEST_ID_PREFIX_LEN + 2]; /* random hex and '-', once per server */
    _Atomic uint64_t next_id;      /* request ids made: id_prefix-<count> */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default:  return "Unknown";
    }
}

const char *http_request_header(const http_request *req, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->header_count; i++) {
        const http_header *h = &req->headers[i];
        if (h->name_len == n && strncasecmp(h->name, name, n) == 0) {
            if (len)
                *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

/* ---- limits: connection slots and the bodies' budget --------------------------------------- */

/* Take a connection slot; false at max_connections. */
static bool slot_take(http_server *s)
{
    int open = atomic_load_explicit(&s->connections, memory_order_relaxed);
    do {
        if (open >= s->max_connections)
            return false;
    } while (!atomic_compare_exchange_weak(&s->connections, &open, open + 1));
    return true;
}

/* Give a slot back; at the cap, wake every worker so that a paused one accepts again. */
static void slot_give(http_server *s)
{
    if (atomic_fetch_sub(&s->connections, 1) < s->max_connections || atomic_load(&s->stopping))
        return;
    for (int i = 0; i < s->cfg.threads; i++) { /* every done_fd exists before a worker runs */
        uint64_t one = 1;
        if (write(s->workers[i].done_fd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_line("warn", "http: cannot wake worker %d: %s", i, strerror(errno));
    }
}

static bool warn_due(worker *w, int64_t now)
{
    if (w->warned_ms && now - w->warned_ms < WARN_INTERVAL_MS)
        return false;
    w->warned_ms = now;
    return true;
}

/* Count bytes more of c's body against the server's budget; false (c->body_refusal set) when
 * they do not fit: 413 if the body alone would pass the budget, else 503. */
static bool body_reserve(conn *c, uint64_t bytes)
{
    http_server *s = c->w->server;
    uint64_t budget = s->cfg.max_bodies_in_flight_bytes;
    if (!budget)
        return true;
    if (bytes > budget - c->body_reserved) {
        c->body_refusal = 413;
        return false;
    }
    uint64_t used = atomic_load_explicit(&s->body_bytes, memory_order_relaxed);
    do {
        if (used > budget - bytes) {
            c->body_refusal = HTTP_UNAVAILABLE;
            return false;
        }
    } while (!atomic_compare_exchange_weak(&s->body_bytes, &used, used + bytes));
    c->body_reserved += bytes;
    return true;
}

static void body_release(conn *c)
{
    if (c->body_reserved)
        atomic_fetch_sub(&c->w->server->body_bytes, c->body_reserved);
    c->body_reserved = 0;
}

/* ---- the request's record and its id ------------------------------------------------------- */

/* A fresh record for a request that began at started_ns (0: none began yet). */
static void record_reset(http_record *r, int64_t started_ns)
{
    r->method = NULL;
    r->status = 0;
    r->bytes_sent = 0;
    r->started_ns = started_ns;
    r->duration_us = 0;
    r->request_id[0] = r->function[0] = r->key[0] = r->token_name[0] = '\0';
    r->request_id_len = r->function_len = r->key_len = r->token_name_len = 0;
    r->source = NULL;
}

/* Copy the first max bytes at most of from (NULL: none) to to, NUL-terminated; the length. */
static size_t copy_bounded(char *to, size_t max, const char *from, size_t len)
{
    len = from ? (len < max ? len : max) : 0;
    if (len)
        memcpy(to, from, len);
    to[len] = '\0';
    return len;
}

void http_record_note(http_record *r, const char *function, const char *key, size_t key_len,
                      const char *token_name, const char *source)
{
    if (!r)
        return;
    r->function_len = copy_bounded(r->function, HTTP_RECORD_NAME_MAX, function,
                                   function ? strlen(function) : 0);
    r->key_len = copy_bounded(r->key, HTTP_RECORD_KEY_MAX, key, key_len);
    r->token_name_len = copy_bounded(r->token_name, HTTP_RECORD_NAME_MAX, token_name,
                                     token_name ? strlen(token_name) : 0);
    r->source = source;
}

/* Whether a client's X-Request-Id may be used as it is: 1 to HTTP_REQUEST_ID_MAX of HTTP's
 * token characters and "/:=@" (base64 and URNs), none of which JSON or a header line escapes. */
static bool request_id_sane(const char *id, size_t len)
{
    static const char extra[] = "!#$%&'*+-.^_`|~/:=@";
    if (len == 0 || len > HTTP_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (!(ch >= '0' && ch <= '9') && !((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') &&
            !(ch && memchr(extra, ch, sizeof extra - 1)))
            return false;
    }
    return true;
}

/* Our ids: a random prefix drawn once per server, then a count, so they are unique across
 * restarts without a random draw per request. */
static void ids_init(http_server *s)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)clock_mono_ns() ^ ((uint64_t)getpid() << 32);
    snprintf(s->id_prefix, sizeof s->id_prefix, "%016llx-", (unsigned long long)seed);
}

/* id_prefix then the count in hexadecimal; no printf: this runs for every request. */
static void request_id_make(conn *c)
{
    static const char hex[] = "0123456789abcdef";
    http_server *s = c->w->server;
    uint64_t n = atomic_fetch_add_explicit(&s->next_id, 1, memory_order_relaxed);
    char digits[16];
    size_t count = 0;
    do {
        digits[sizeof digits - 1 - count++] = hex[n & 15];
        n >>= 4;
    } while (n);
    char *id = c->record.request_id;
    memcpy(id, s->id_prefix, REQUEST_ID_PREFIX_LEN + 1);
    memcpy(id + REQUEST_ID_PREFIX_LEN + 1, digits + sizeof digits - count, count);
    id[REQUEST_ID_PREFIX_LEN + 1 + count] = '\0';
    c->record.request_id_len = REQUEST_ID_PREFIX_LEN + 1 + count;
}

/* The request's id: the client's X-Request-Id when sane, else one made. Reads the headers'
 * spans: call it before the message leaves the input buffer. */
static void request_identify(conn *c)
{
    if (c->record.request_id[0])
        return;
    static const char name[] = "X-Request-Id";
    for (size_t i = 0; i < c->header_count; i++) {
        const header_span *h = &c->headers[i];
        if (h->name_len == sizeof name - 1 &&
            strncasecmp(c->in + h->name_off, name, sizeof name - 1) == 0) {
            if (request_id_sane(c->in + h->value_off, h->value_len))
                c->record.request_id_len = copy_bounded(c->record.request_id,
                                                        HTTP_REQUEST_ID_MAX,
                                                        c->in + h->value_off, h->value_len);
            break;
        }
    }
    if (!c->record.request_id[0])
        request_id_make(c);
}

/* The peer of an accepted socket as "address:port" ("[address]:port" for IPv6). */
static void client_format(conn *c, const struct sockaddr_storage *peer)
{
    char addr[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        port = ntohs(in->sin_port);
        snprintf(c->client, sizeof c->client, "%s:%u", addr, port);
    } else if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
        port = ntohs(in6->sin6_port);
        snprintf(c->client, sizeof c->client, "[%s]:%u", addr, port);
    }
}

/* The request is over (its response left, or the connection closed under it): the one place
 * where everything about it is known. */
static void request_end(conn *c)
{
    http_record *r = &c->record;
    c->record_open = false;
    r->duration_us = r->started_ns ? (clock_mono_ns() - r->started_ns) / 1000 : 0;
    r->client = c->client;
    access_log_request(r);
    record_reset(r, 0);
}

/* ---- connections -------------------------------------------------------------------------- */

static void conn_close(conn *c)
{
    worker *w = c->w;
    if (c->record_open)
        request_end(c);
    epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    body_release(c);
    slot_give(w->server);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    aside_value_release(c->out_value);
    segments_release(&c->out_segments);
    buf_free(&c->body);
    buf_free(&c->out);
    free(c->in);
    free(c);
}

static void conn_watch(conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(c->w->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void message_reset(conn *c)
{
    c->url_off = c->url_len = 0;
    c->header_count = 0;
    c->header_in_value = c->header_skip = false;
    c->body_off = c->body_len = 0;
    buf_reset(&c->body);
    body_release(c);
    c->body_expected = false;
    c->body_refusal = 0;
    c->message_done = false;
    c->message_started_ms = 0;
}

/* ---- parser callbacks: record where things are in the input buffer ------------------------ */

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    message_reset(c);
    record_reset(&c->record, clock_mono_ns());
    c->message_started_ms = now_ms();
    c->deadline_ms = c->message_started_ms + c->w->server->cfg.request_timeout_ms;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->url_len == 0)
        c->url_off = (size_t)(at - c->in);
    c->url_len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->header_in_value || c->header_count == 0) { /* a new header starts */
        c->header_in_value = false;
        c->header_skip = c->header_count == MAX_HEADERS; /* the rest are ignored */
        if (!c->header_skip) {
            header_span *h = &c->headers[c->header_count++];
            memset(h, 0, sizeof *h);
            h->name_off = (size_t)(at - c->in);
        }
    }
    if (!c->header_skip)
        c->headers[c->header_count - 1].name_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->header_skip) {
        c->header_in_value = true;
        return 0;
    }
    header_span *h = &c->headers[c->header_count - 1];
    if (!c->header_in_value) {
        c->header_in_value = true;
        h->value_off = (size_t)(at - c->in);
        h->value_len = 0;
    }
    h->value_len += len;
    return 0;
}

static bool header_is(const conn *c, const header_span *h, const char *name, const char *value)
{
    return h->name_len == strlen(name) && strncasecmp(c->in + h->name_off, name, h->name_len) == 0
           && h->value_len == strlen(value) &&
           strncasecmp(c->in + h->value_off, value, h->value_len) == 0;
}

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    size_t limit = c->w->server->cfg.max_body_bytes;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > limit) {
        c->body_refusal = 413;
        return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0) {
        if (!body_reserve(c, p->content_length))
            return -1;
        c->body_expected = true;
    }
    for (size_t i = 0; i < c->header_count; i++) {
        if (header_is(c, &c->headers[i], "Expect", "100-continue")) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (send(c->fd, cont, sizeof cont - 1, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
                return -1;
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->body_len + len > c->w->server->cfg.max_body_bytes) {
        c->body_refusal = 413;
        return -1;
    }
    if (c->body_len == 0)
        c->body_off = (size_t)(at - c->in);
    c->body_len += len;
    if (!(p->flags & F_CHUNKED))
        return 0; /* in place: in[body_off..) holds it whole, its bytes counted already */
    /* decoded into a buffer of its own while its raw form stays in the input: both count */
    if (!body_reserve(c, 2 * (uint64_t)len))
        return -1;
    buf_append(&c->body, at, len);
    return c->body.failed ? -1 : 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    c->message_done = true;
    c->body_expected = false;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- writing responses -------------------------------------------------------------------- */

static void refresh_date(worker *w)
{
    time_t now = time(NULL);
    if (now == w->date_sec)
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(w->date, sizeof w->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    w->date_sec = now;
}

static void compose(conn *c, http_response *res, bool keep_alive)
{
    keep_alive = keep_alive && !atomic_load_explicit(&c->w->server->draining,
                                                     memory_order_relaxed);
    uint64_t body_len = res->value ? aside_value_size(res->value)
                        : res->segments.count ? res->segments.total_bytes : res->body.len;
    buf *o = &c->out;
    buf_reset(o);
    c->out_sent = 0;
    c->value_sent = 0;
    refresh_date(c->w);
    buf_puts(o, "HTTP/1.1 ");
    buf_put_u64(o, (uint64_t)res->status);
    buf_putc(o, ' ');
    buf_puts(o, http_status_text(res->status));
    buf_puts(o, "\r\nServer: aside\r\n");
    buf_puts(o, c->w->date);
    if (res->content_type) {
        buf_puts(o, "Content-Type: ");
        buf_puts(o, res->content_type);
        buf_puts(o, "\r\n");
    }
    buf_puts(o, "Content-Length: ");
    buf_put_u64(o, body_len);
    buf_puts(o, "\r\n");
    buf_append(o, res->headers.data, res->headers.len);
    if (!c->record.request_id[0])
        request_id_make(c);
    static const char id_header[] = "X-Request-Id: ";
    buf_append(o, id_header, sizeof id_header - 1);
    buf_append(o, c->record.request_id, c->record.request_id_len);
    buf_append(o, "\r\n", 2);
    c->record.status = res->status;
    if (!c->record.started_ns)
        c->record.started_ns = clock_mono_ns();
    c->record_open = true;
    if (!keep_alive)
        buf_puts(o, "Connection: close\r\n");
    else if (c->parser.http_minor == 0)
        buf_puts(o, "Connection: keep-alive\r\n");
    buf_puts(o, "\r\n");
    if (!res->omit_body && !res->value && !res->segments.count)
        buf_append(o, res->body.data, res->body.len);
    if (!res->omit_body && res->segments.count) { /* the connection owns them now */
        c->out_segments = res->segments;
        memset(&res->segments, 0, sizeof res->segments);
        c->segment_at = c->segment_sent = 0;
    }
    if (!res->omit_body && res->value)
        c->out_value = aside_value_retain(res->value);
    c->close_after = !keep_alive;
}

/* Send out, then segments, with writev; the result of the last writev. */
static ssize_t flush_segments(conn *c)
{
    enum { MAX_IOV = 64 };
    struct iovec iov[MAX_IOV];
    size_t n = 0;
    if (c->out_sent < c->out.len)
        iov[n++] = (struct iovec){c->out.data + c->out_sent, c->out.len - c->out_sent};
    const http_segments *s = &c->out_segments;
    for (size_t i = c->segment_at; i < s->count && n < MAX_IOV; i++) {
        size_t skip = i == c->segment_at ? c->segment_sent : 0;
        iov[n++] = (struct iovec){(char *)s->iov[i].iov_base + skip, s->iov[i].iov_len - skip};
    }
    ssize_t sent = n ? writev(c->fd, iov, (int)n) : 0;
    size_t left = sent > 0 ? (size_t)sent : 0;
    size_t head = c->out.len - c->out_sent;
    size_t from_head = left < head ? left : head;
    c->out_sent += from_head;
    left -= from_head;
    while (left && c->segment_at < s->count) {
        size_t rest = s->iov[c->segment_at].iov_len - c->segment_sent;
        size_t take = left < rest ? left : rest;
        c->segment_sent += take;
        left -= take;
        if (c->segment_sent == s->iov[c->segment_at].iov_len) {
            c->segment_at++;
            c->segment_sent = 0;
        }
    }
    while (c->segment_at < s->count && s->iov[c->segment_at].iov_len == 0)
        c->segment_at++;
    return sent;
}

/* True when the whole response left. */
static bool response_sent(const conn *c)
{
    if (c->out_segments.count)
        return c->out_sent == c->out.len && c->segment_at == c->out_segments.count;
    uint64_t value_len = c->out_value ? aside_value_size(c->out_value) : 0;
    return c->out_sent == c->out.len && c->value_sent == value_len;
}

enum { FLUSH_CLOSED = -2 }; /* flush_value closed the connection */

/* Send out, then the value: writev from memory, sendfile from its file. The result of the
 * write, or FLUSH_CLOSED. */
static ssize_t flush_value(conn *c)
{
    uint64_t value_len = c->out_value ? aside_value_size(c->out_value) : 0;
    const char *data = c->out_value ? aside_value_data(c->out_value) : NULL;
    ssize_t n;
    if (c->out_sent < c->out.len || !c->out_value || data) {
        struct iovec iov[2] = {
            {c->out.data + c->out_sent, c->out.len - c->out_sent},
            {data ? (char *)data + c->value_sent : NULL, data ? value_len - c->value_sent : 0},
        };
        n = writev(c->fd, iov, iov[1].iov_len ? 2 : 1);
        if (n > 0) {
            size_t head = c->out.len - c->out_sent;
            size_t from_head = (size_t)n < head ? (size_t)n : head;
            c->out_sent += from_head;
            c->value_sent += (uint64_t)n - from_head;
        }
        return n;
    }
    off_t off = (off_t)c->value_sent;
    n = sendfile(c->fd, aside_value_fd(c->out_value), &off, value_len - c->value_sent);
    if (n > 0)
        c->value_sent += (uint64_t)n;
    if (n == 0) { /* the file shrank under us: the response cannot be completed */
        conn_close(c);
        return FLUSH_CLOSED;
    }
    return n;
}

/* Write as much as the socket takes. Returns false if the connection was closed. */
static bool conn_flush(conn *c)
{
    while (!response_sent(c)) {
        ssize_t n = c->out_segments.count ? flush_segments(c) : flush_value(c);
        if (n == FLUSH_CLOSED)
            return false;
        if (n > 0)
            c->record.bytes_sent += (uint64_t)n;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!c->writing)
                conn_watch(c, EPOLLOUT);
            c->writing = true;
            c->deadline_ms = now_ms() + c->w->server->cfg.request_timeout_ms;
            return true;
        }
        if (n < 0) {
            conn_close(c);
            return false;
        }
    }
    aside_value_release(c->out_value);
    c->out_value = NULL;
    segments_release(&c->out_segments);
    if (c->record_open)
        request_end(c);
    if (c->close_after || atomic_load_explicit(&c->w->server->draining, memory_order_relaxed)) {
        shutdown(c->fd, SHUT_WR);
        conn_close(c);
        return false;
    }
    if (c->writing)
        conn_watch(c, EPOLLIN);
    c->writing = false;
    return true;
}

/* Send a response of our own (an error found while parsing) and close. */
static void conn_fail(conn *c, int status, const char *code, const char *message)
{
    http_response res = {.status = status, .content_type = "application/json"};
    request_identify(c);
    if (!c->record.method && c->url_len)
        c->record.method = http_method_str((enum http_method)c->parser.method);
    buf_init(&res.headers);
    buf_init(&res.body);
    if (status == HTTP_UNAVAILABLE)
        buf_puts(&res.headers, HTTP_RETRY_AFTER);
    buf_printf(&res.body, "{\"error\": {\"code\": \"%s\", \"message\": \"%s\"}}", code, message);
    compose(c, &res, false);
    buf_free(&res.body);
    buf_free(&res.headers);
    conn_flush(c);
}

/* ---- handling messages -------------------------------------------------------------------- */

static http_method_kind method_kind(unsigned method)
{
    switch (method) {
    case HTTP_GET: return HTTP_METHOD_GET;
    case HTTP_HEAD: return HTTP_METHOD_HEAD;
    case HTTP_POST: return HTTP_METHOD_POST;
    case HTTP_PUT: return HTTP_METHOD_PUT;
    case HTTP_DELETE: return HTTP_METHOD_DELETE;
    default: return HTTP_METHOD_OTHER;
    }
}

static void response_reset(http_response *res)
{
    segments_release(&res->segments);
    buf_free(&res->body);
    buf_free(&res->headers);
    aside_value_release(res->value);
    http_record *record = res->record;
    memset(res, 0, sizeof *res);
    res->status = 200;
    res->record = record;
}

/* The handler is done with the message: drop it from the input buffer (what the client
 * pipelined behind it stays), free buffers grown for a large body and give back its budget.
 * This runs before the response leaves, so a client that has the response finds the budget
 * free whichever worker serves it next. */
static void conn_drop_message(conn *c)
{
    size_t rest = c->in_len - c->parsed;
    memmove(c->in, c->in + c->parsed, rest);
    c->in_len = rest;
    c->parsed = 0;
    if (c->in_cap > INPUT_KEEP_BYTES && rest <= INPUT_INITIAL_BYTES) {
        char *in = realloc(c->in, INPUT_INITIAL_BYTES);
        if (in) {
            c->in = in;
            c->in_cap = INPUT_INITIAL_BYTES;
        }
    }
    if (c->body.cap > INPUT_KEEP_BYTES)
        buf_free(&c->body);
    buf_reset(&c->body);
    c->body_off = c->body_len = 0;
    body_release(c);
}

/* Send the response the handler built. False if the connection closed. */
static bool conn_respond(conn *c)
{
    conn_drop_message(c);
    http_response *res = &c->res;
    if (res->headers.failed || res->body.failed) {
        response_reset(res);
        conn_fail(c, 503, "out_of_memory", "out of memory building the response");
        return false;
    }
    compose(c, res, http_should_keep_alive(&c->parser));
    response_reset(res);
    return conn_flush(c);
}

/* Hand the request to the blocking pool; the connection sleeps until it comes back. */
static void conn_defer(conn *c)
{
    http_server *s = c->w->server;
    c->deferred = true;
    epoll_ctl(c->w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    response_reset(&c->res);
    c->req.may_block = true;
    c->task_next = NULL;
    pthread_mutex_lock(&s->tasks.lock);
    if (s->tasks.tail)
        s->tasks.tail->task_next = c;
    else
        s->tasks.head = c;
    s->tasks.tail = c;
    pthread_cond_signal(&s->tasks.ready);
    pthread_mutex_unlock(&s->tasks.lock);
}

/* Run the handler on the complete message: answer it, or defer it to the blocking pool. */
static bool conn_dispatch(conn *c)
{
    for (size_t i = 0; i < c->header_count; i++) {
        header_span *h = &c->headers[i];
        c->req_headers[i] = (http_header){c->in + h->name_off, h->name_len,
                                          c->in + h->value_off, h->value_len};
    }
    c->req = (http_request){
        .method = method_kind(c->parser.method),
        .method_name = http_method_str((enum http_method)c->parser.method),
        .target = c->in + c->url_off,
        .target_len = c->url_len,
        .headers = c->req_headers,
        .header_count = c->header_count,
        .body = c->body.len ? c->body.data : c->body_len ? c->in + c->body_off : "",
        .body_len = c->body_len,
        .may_block = false,
        .received_ns = clock_mono_ns(),
    };
    request_identify(c);
    c->record.method = c->req.method_name;
    response_reset(&c->res);
    c->w->server->handler(c->w->server->ctx, &c->req, &c->res);
    if (c->res.defer) {
        conn_defer(c);
        return true;
    }
    return conn_respond(c);
}

/* Go on with the next message once the response left. */
static void conn_compact(conn *c)
{
    conn_drop_message(c);
    message_reset(c);
    c->deadline_ms = now_ms() + c->w->server->cfg.idle_timeout_ms;
}

/* http-parser, built without strict checks, takes "HTTX/1.1" for "HTTP/1.1": check the
 * protocol name that follows the target ourselves. */
static bool request_line_is_http(const conn *c)
{
    static const char protocol[] = " HTTP/";
    size_t at = c->url_off + c->url_len;
    return at + sizeof protocol - 1 <= c->in_len &&
           memcmp(c->in + at, protocol, sizeof protocol - 1) == 0;
}

/* Parse what was read and answer every complete message. False if the connection closed. */
static bool conn_process(conn *c)
{
    while (!c->writing && !c->deferred && c->parsed < c->in_len) {
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in + c->parsed,
                                       c->in_len - c->parsed);
        c->parsed += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED && c->message_done) {
            http_parser_pause(&c->parser, 0);
            if (!request_line_is_http(c)) {
                conn_fail(c, 400, "bad_request", "malformed HTTP request line");
                return false;
            }
            if (!conn_dispatch(c))
                return false;
            if (c->writing || c->deferred) /* conn_compact runs when the response is out */
                return true;
            conn_compact(c);
            continue;
        }
        if (c->body_refusal == 413) {
            conn_fail(c, 413, "too_large", "request body is larger than the limit");
            return false;
        }
        if (c->body_refusal) {
            conn_fail(c, HTTP_UNAVAILABLE, "busy", "the server is receiving as many request "
                      "bodies as it takes at once (ASIDE_MAX_BODIES_IN_FLIGHT); retry later");
            return false;
        }
        if (e != HPE_OK) {
            char message[160];
            snprintf(message, sizeof message, "malformed HTTP request: %s",
                     http_errno_description(e));
            conn_fail(c, e == HPE_HEADER_OVERFLOW ? 431 : 400, "bad_request", message);
            return false;
        }
        break; /* need more bytes */
    }
    return true;
}

static bool conn_grow_input(conn *c)
{
    size_t limit = HEADER_MAX_BYTES + c->w->server->cfg.max_body_bytes;
    if (c->in_len < c->in_cap)
        return true;
    if (c->in_cap >= limit) {
        conn_fail(c, 413, "too_large", "request is larger than the limit");
        return false;
    }
    size_t cap = c->in_cap ? c->in_cap * 2 : INPUT_INITIAL_BYTES;
    /* a body of known length: room for the rest of it at once (the parser counts it down) */
    if (c->body_expected && c->parser.content_length > 0 && c->parser.content_length < limit)
        cap = c->in_len + (size_t)c->parser.content_length;
    cap = cap > limit ? limit : cap;
    char *in = realloc(c->in, cap);
    if (!in) {
        conn_close(c);
        return false;
    }
    c->in = in;
    c->in_cap = cap;
    return true;
}

static void conn_readable(conn *c)
{
    for (;;) {
        if (!conn_grow_input(c))
            return;
        size_t room = c->in_cap - c->in_len;
        ssize_t n = read(c->fd, c->in + c->in_len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->in_len += (size_t)n;
        if (!conn_process(c) || c->writing || c->deferred)
            return;
        if ((size_t)n < room)
            return;
    }
}

static void conn_writable(conn *c)
{
    if (!conn_flush(c) || c->writing)
        return;
    conn_compact(c);
    if (conn_process(c) && !c->writing && c->in_len > c->parsed)
        conn_readable(c);
}

/* A deferred request came back from the pool: send its response and go on. */
static void conn_resume(conn *c)
{
    c->deferred = false;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(c->w->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        response_reset(&c->res);
        conn_close(c);
        return;
    }
    if (!conn_respond(c) || c->writing)
        return;
    conn_compact(c);
    conn_process(c);
}

static void take_done(worker *w)
{
    uint64_t count;
    if (read(w->done_fd, &count, sizeof count) < 0 && errno != EAGAIN)
        return;
    pthread_mutex_lock(&w->done_lock);
    conn *c = w->done;
    w->done = NULL;
    pthread_mutex_unlock(&w->done_lock);
    while (c) {
        conn *next = c->task_next;
        conn_resume(c);
        c = next;
    }
}

/* ---- the blocking pool ---------------------------------------------------------------------- */

static void *pool_run(void *arg)
{
    http_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->tasks.lock);
        while (!s->tasks.head && !s->tasks.stopping)
            pthread_cond_wait(&s->tasks.ready, &s->tasks.lock);
        conn *c = s->tasks.head;
        if (c) {
            s->tasks.head = c->task_next;
            if (!s->tasks.head)
                s->tasks.tail = NULL;
        }
        pthread_mutex_unlock(&s->tasks.lock);
        if (!c)
            return NULL; /* stopping, and nothing left */
        atomic_fetch_add(&s->handlers_running, 1);
        s->handler(s->ctx, &c->req, &c->res);
        atomic_fetch_sub(&s->handlers_running, 1);
        worker *w = c->w;
        pthread_mutex_lock(&w->done_lock);
        c->task_next = w->done;
        w->done = c;
        pthread_mutex_unlock(&w->done_lock);
        uint64_t one = 1;
        if (write(w->done_fd, &one, sizeof one) < 0)
            log_line("warn", "http: cannot wake a worker");
    }
}

/* ---- workers ------------------------------------------------------------------------------ */

/* Take the listening socket out of the epoll set; accept again from retry_ms on (0: when a
 * connection slot frees). */
static void accept_pause(worker *w, int64_t retry_ms)
{
    if (w->accepting) {
        epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, w->listen_fd, NULL);
        if (w->unix_fd >= 0)
            epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, w->unix_fd, NULL);
    }
    w->accepting = false;
    w->accept_retry_ms = retry_ms;
}

/* Put a listening socket (-1: none) in the epoll set; true when it is there. */
static bool watch_listener(worker *w, int *fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = fd};
    return *fd < 0 || epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, *fd, &ev) == 0 || errno == EEXIST;
}

/* Watch the listening sockets again if accepting paused and its reason is gone. */
static void accept_resume(worker *w)
{
    if (w->drained || now_ms() < w->accept_retry_ms ||
        atomic_load(&w->server->connections) >= w->server->max_connections)
        return;
    if (watch_listener(w, &w->listen_fd) && watch_listener(w, &w->unix_fd)) {
        w->accepting = true;
        w->accept_retry_ms = 0;
    } else {
        w->accept_retry_ms = now_ms() + ACCEPT_RETRY_MS; /* the kernel is short: not at once */
    }
}

/* accept failed with err: go on, wait for the next event, or pause (out of descriptors). */
static bool accept_failed(worker *w, int err)
{
    if (err == EINTR || err == ECONNABORTED)
        return true;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        int64_t now = now_ms();
        if (warn_due(w, now))
            log_line("warn", "http: cannot accept a connection: %s; accepting again in %d ms",
                     strerror(err), ACCEPT_RETRY_MS);
        accept_pause(w, now + ACCEPT_RETRY_MS);
    }
    return false;
}

/* Accept every connection waiting on listen_fd (the TCP or the Unix listening socket). */
static void accept_all(worker *w, int listen_fd)
{
    http_server *s = w->server;
    for (;;) {
        if (!slot_take(s)) {
            if (warn_due(w, now_ms()))
                log_line("warn", "http: %d connections open, the most ASIDE_MAX_CONNECTIONS "
                         "allows: new ones wait until one closes", s->max_connections);
            accept_pause(w, 0);
            return;
        }
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept4(listen_fd, (struct sockaddr *)&peer, &peer_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            slot_give(s);
            if (accept_failed(w, err))
                continue;
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            slot_give(s);
            continue;
        }
        c->fd = fd;
        c->w = w;
        c->res.record = &c->record;
        client_format(c, &peer);
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->parser.data = c;
        c->deadline_ms = now_ms() + w->server->cfg.request_timeout_ms;
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0)
            conn_close(c);
    }
}

static void sweep(worker *w)
{
    int64_t now = now_ms();
    conn *c = w->conns;
    while (c) {
        conn *next = c->next;
        if (now >= c->deadline_ms && !c->deferred)
            conn_close(c);
        c = next;
    }
}

/* How long the loop may sleep: until the next sweep, or sooner to accept again. */
static int wait_ms(const worker *w, int64_t next_sweep)
{
    if (w->accepting || !w->accept_retry_ms)
        return SWEEP_INTERVAL_MS;
    int64_t until = next_sweep;
    if (w->accept_retry_ms < until)
        until = w->accept_retry_ms;
    int64_t left = until - now_ms();
    return left < 0 ? 0 : left > SWEEP_INTERVAL_MS ? SWEEP_INTERVAL_MS : (int)left;
}

/* The drain began: stop accepting (the listening socket closed: new clients are refused) and
 * close the connections with nothing in flight; the others close after their response. */
static void worker_drain(worker *w)
{
    accept_pause(w, 0);
    close(w->listen_fd);
    w->listen_fd = -1;
    if (w->unix_fd >= 0)
        close(w->unix_fd);
    w->unix_fd = -1;
    w->drained = true;
    conn *c = w->conns;
    while (c) {
        conn *next = c->next;
        if (!c->deferred && !c->writing && c->in_len == 0)
            conn_close(c);
        c = next;
    }
}

static void *worker_run(void *arg)
{
    worker *w = arg;
    struct epoll_event events[EVENTS_PER_WAIT];
    int64_t next_sweep = now_ms() + SWEEP_INTERVAL_MS;
    for (;;) {
        int n = epoll_wait(w->epoll_fd, events, EVENTS_PER_WAIT, wait_ms(w, next_sweep));
        for (int i = 0; i < n; i++) {
            void *tag = events[i].data.ptr;
            if (tag == &w->listen_fd || tag == &w->unix_fd) {
                accept_all(w, *(int *)tag);
            } else if (tag == &w->stop_fd) {
                goto stop;
            } else if (tag == &w->done_fd) {
                take_done(w);
            } else {
                conn *c = tag;
                uint32_t ev = events[i].events;
                if (c->writing && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                    conn_writable(c);
                else if (!c->writing && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)))
                    conn_readable(c);
            }
        }
        int64_t now = now_ms();
        if (now >= next_sweep) {
            sweep(w);
            next_sweep = now + SWEEP_INTERVAL_MS;
        }
        if (!w->drained && atomic_load_explicit(&w->server->draining, memory_order_relaxed))
            worker_drain(w);
        if (!w->accepting)
            accept_resume(w);
    }
stop:
    while (w->conns) {
        response_reset(&w->conns->res);
        conn_close(w->conns);
    }
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------------- */

static int listen_on(const char *bind_addr, int port, aside_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    int rc = getaddrinfo(bind_addr, port_text, &hints, &ai);
    if (rc != 0) {
        error_set(err, ASIDE_ERR_INVALID, "cannot resolve bind address %s: %s", bind_addr,
                  gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        error_set(err, ASIDE_ERR_INVALID, "cannot listen on %s:%d: %s", bind_addr, port,
                  strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* The Unix listening socket at path (an old socket there replaced), connectable by any user
 * who reaches it: its folder decides who does. -1 with err set when it cannot be made. */
static int listen_unix(const char *path, aside_error *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        error_set(err, ASIDE_ERR_INVALID, "cannot listen on %s: the path is too long", path);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        chmod(path, 0666) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        error_set(err, ASIDE_ERR_IO, "cannot listen on %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        return -1;
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

static aside_status worker_init(http_server *s, worker *w, int unix_fd, aside_error *err)
{
    w->server = s;
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&w->done_lock, NULL);
    w->listen_fd = listen_on(s->cfg.bind, s->port, err);
    if (w->listen_fd < 0)
        return ASIDE_ERR_INVALID;
    if (w->epoll_fd < 0 || w->stop_fd < 0 || w->done_fd < 0)
        return error_set(err, ASIDE_ERR_IO, "cannot create an event loop: %s", strerror(errno));
    if (s->port == 0)
        s->port = bound_port(w->listen_fd);
    if (unix_fd >= 0 && (w->unix_fd = fcntl(unix_fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return error_set(err, ASIDE_ERR_IO, "cannot listen: %s", strerror(errno));
    struct epoll_event local = {.events = EPOLLIN, .data.ptr = &w->unix_fd};
    if (w->unix_fd >= 0 && epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->unix_fd, &local) != 0)
        return error_set(err, ASIDE_ERR_IO, "epoll_ctl failed: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->listen_fd};
    struct epoll_event stop = {.events = EPOLLIN, .data.ptr = &w->stop_fd};
    struct epoll_event done = {.events = EPOLLIN, .data.ptr = &w->done_fd};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->listen_fd, &ev) != 0 ||
        epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->stop_fd, &stop) != 0 ||
        epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->done_fd, &done) != 0)
        return error_set(err, ASIDE_ERR_IO, "epoll_ctl failed: %s", strerror(errno));
    w->accepting = true;
    return ASIDE_OK;
}

static void worker_close(worker *w)
{
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    if (w->unix_fd >= 0)
        close(w->unix_fd);
    if (w->epoll_fd >= 0)
        close(w->epoll_fd);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    if (w->done_fd >= 0)
        close(w->done_fd);
    pthread_mutex_destroy(&w->done_lock);
}

aside_status http_server_start(const http_config *cfg, http_handler handler, void *ctx,
                               http_server **out, aside_error *err)
{
    signal(SIGPIPE, SIG_IGN);
    http_server *s = calloc(1, sizeof *s);
    int threads = cfg->threads > 0 ? cfg->threads : 1;
    worker *workers = calloc((size_t)threads, sizeof *workers);
    if (!s || !workers) {
        free(s);
        free(workers);
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    s->cfg = *cfg;
    s->cfg.threads = threads;
    s->handler = handler;
    s->ctx = ctx;
    s->port = cfg->port;
    s->workers = workers;
    s->max_connections = cfg->max_connections > 0 ? cfg->max_connections : INT_MAX;
    ids_init(s);
    for (int i = 0; i < threads; i++)
        workers[i].listen_fd = workers[i].epoll_fd = workers[i].stop_fd = workers[i].done_fd =
            workers[i].unix_fd = -1;
    pthread_mutex_init(&s->tasks.lock, NULL);
    pthread_cond_init(&s->tasks.ready, NULL);
    aside_status st = ASIDE_OK;
    int unix_fd = cfg->unix_path ? listen_unix(cfg->unix_path, err) : -1;
    if (cfg->unix_path && unix_fd < 0)
        st = ASIDE_ERR_IO;
    for (int i = 0; i < threads && st == ASIDE_OK; i++)
        st = worker_init(s, &workers[i], unix_fd, err);
    if (unix_fd >= 0)
        close(unix_fd); /* each event loop holds its own copy */
    int pool = cfg->blocking_threads > 0 ? cfg->blocking_threads : 1;
    s->pool = calloc((size_t)pool, sizeof *s->pool);
    if (!s->pool && st == ASIDE_OK)
        st = error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < pool && st == ASIDE_OK; i++) {
        if (pthread_create(&s->pool[i], NULL, pool_run, s) != 0)
            st = error_set(err, ASIDE_ERR_INTERNAL, "cannot start a pool thread");
        else
            s->pool_count++;
    }
    for (int i = 0; i < threads && st == ASIDE_OK; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]) != 0)
            st = error_set(err, ASIDE_ERR_INTERNAL, "cannot start a worker thread");
        else
            s->worker_count++;
    }
    if (st != ASIDE_OK) {
        for (int i = s->worker_count; i < threads; i++)
            worker_close(&workers[i]);
        http_server_stop(s);
        return st;
    }
    *out = s;
    return ASIDE_OK;
}

int http_server_port(const http_server *s) { return s->port; }

void http_server_set_max_connections(http_server *s, int max_connections)
{
    atomic_store(&s->max_connections, max_connections > 0 ? max_connections : INT_MAX);
}

void http_server_drain(http_server *s)
{
    atomic_store(&s->draining, true);
    for (int i = 0; i < s->worker_count; i++) {
        uint64_t one = 1; /* wakes the loop, which sees the flag */
        if (write(s->workers[i].done_fd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_line("warn", "http: cannot wake worker %d to drain", i);
    }
}

int http_server_connections(http_server *s) { return atomic_load(&s->connections); }

int http_server_handlers_running(http_server *s) { return atomic_load(&s->handlers_running); }

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    /* the pool first: it finishes the requests it holds and hands them to the workers, which
     * then close every connection (without waking each other: they are stopping) */
    atomic_store(&s->stopping, true);
    pthread_mutex_lock(&s->tasks.lock);
    s->tasks.stopping = true;
    pthread_cond_broadcast(&s->tasks.ready);
    pthread_mutex_unlock(&s->tasks.lock);
    for (int i = 0; i < s->pool_count; i++)
        pthread_join(s->pool[i], NULL);
    free(s->pool);
    for (int i = 0; i < s->worker_count; i++) {
        uint64_t one = 1;
        if (write(s->workers[i].stop_fd, &one, sizeof one) < 0)
            log_line("warn", "http: cannot signal worker %d to stop", i);
    }
    for (int i = 0; i < s->worker_count; i++)
        pthread_join(s->workers[i].thread, NULL);
    for (int i = 0; i < s->worker_count; i++)
        worker_close(&s->workers[i]);
    free(s->workers);
    pthread_cond_destroy(&s->tasks.ready);
    pthread_mutex_destroy(&s->tasks.lock);
    free(s);
}

/* ---- one connection's bytes, without a network ------------------------------------------------
 *
 * For the fuzzer and tests: the bytes a client sent on one connection go through the same code
 * a worker runs (conn_readable, conn_process, the parser's callbacks, conn_respond), over a
 * socket pair instead of an accepted socket. Deferred requests are answered on the calling
 * thread, as a pool thread would answer them; responses are read and dropped. */

enum { SERVE_BYTES_MAX_ROUNDS = 1 << 20 }; /* each round moves bytes; this only bounds a bug */

typedef struct counting_handler {
    http_handler handler;
    void        *ctx;
    size_t       calls;
} counting_handler;

static void count_call(void *ctx, const http_request *req, http_response *res)
{
    counting_handler *h = ctx;
    h->calls += !req->may_block; /* a deferred request's second call is not a new request */
    h->handler(h->ctx, req, res);
}

/* The connection of w over fd, set up as accept_all sets up an accepted one; NULL on failure
 * (fd is closed). */
static conn *serve_bytes_conn(worker *w, int fd)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->w = w;
    c->res.record = &c->record;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->deadline_ms = now_ms() + w->server->cfg.request_timeout_ms;
    w->conns = c;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        conn_close(c);
        return NULL;
    }
    return c;
}

/* One step of the connection: answer a deferred request, write, or read. */
static void serve_bytes_step(http_server *s, conn *c)
{
    if (c->deferred) {
        s->tasks.head = s->tasks.tail = NULL;
        s->handler(s->ctx, &c->req, &c->res);
        conn_resume(c);
    } else if (c->writing) {
        conn_writable(c);
    } else {
        conn_readable(c);
    }
}

size_t http_serve_bytes(const http_config *cfg, http_handler handler, void *ctx,
                        const void *data, size_t len)
{
    counting_handler counted = {handler, ctx, 0};
    /* one connection, its slot taken, and no cap: closing it wakes no worker */
    http_server s = {.cfg = *cfg, .handler = count_call, .ctx = &counted, .connections = 1,
                     .max_connections = INT_MAX};
    worker w = {.server = &s, .listen_fd = -1, .stop_fd = -1, .done_fd = -1};
    ids_init(&s);
    pthread_mutex_init(&s.tasks.lock, NULL);
    pthread_cond_init(&s.tasks.ready, NULL);
    int pair[2] = {-1, -1};
    w.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (w.epoll_fd >= 0 &&
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0)
        serve_bytes_conn(&w, pair[0]); /* owns pair[0] from here, even when it fails */
    size_t fed = 0;
    bool half_closed = false;
    for (int round = 0; w.conns && round < SERVE_BYTES_MAX_ROUNDS; round++) {
        ssize_t n = fed < len ? write(pair[1], (const char *)data + fed, len - fed) : 0;
        fed += n > 0 ? (size_t)n : 0;
        if (fed == len && !half_closed)
            half_closed = shutdown(pair[1], SHUT_WR) == 0;
        char sink[16384];
        while (read(pair[1], sink, sizeof sink) > 0) {
        }
        serve_bytes_step(&s, w.conns);
    }
    while (w.conns) { /* only when the rounds ran out */
        response_reset(&w.conns->res);
        conn_close(w.conns);
    }
    if (pair[1] >= 0)
        close(pair[1]);
    if (w.epoll_fd >= 0)
        close(w.epoll_fd);
    pthread_cond_destroy(&s.tasks.ready);
    pthread_mutex_destroy(&s.tasks.lock);
    return counted.calls;
}
