/* http_mhd.c -- the HTTP/1.1 server over GNU libmicrohttpd (an alternative to http.c).
 *
 * libmicrohttpd (MHD) runs the connections: a pool of cfg->threads threads, each with its own
 * epoll set, all accepting from one listening socket that we create, bind and listen on
 * ourselves (so port 0 works and http_server_port can ask getsockname), then hand over with
 * MHD_OPTION_LISTEN_SOCKET. MHD parses requests, keeps connections alive, pipelines, answers
 * `Expect: 100-continue` with 100, and adds Date and Content-Length. It also answers malformed
 * requests itself, before we see them, with its own HTML 400 page (http.c sends a JSON error),
 * and some (a request line without a version) it just closes; the one ambiguity it lets
 * through, two Content-Lengths or one with Transfer-Encoding, we refuse with 400 as http.c does.
 *
 * A request is met three ways. The URI log callback, called once per request before anything
 * else, creates the request's context and copies the raw target (path and query, not unescaped:
 * the API parses the query itself); MHD frees nothing of ours, so the context is freed by the
 * completion callback. The access handler is then called first with the headers (there the
 * Content-Length is checked against the body limit, and only a rejection is queued: queueing
 * later keeps the connection alive), then once per chunk of body (appended to a buf), then a
 * last time with no data, when the handler runs and its response is queued. A chunked body that
 * grows past the limit is answered 413 and the rest of it is discarded (no memory is kept). We
 * try to queue the 413 as soon as the limit is passed, but MHD 0.9.75 only takes a response
 * before the body or after all of it, so with this version it leaves on the last call.
 *
 * Responses avoid copies as http.c does: a cached value in memory is sent straight from its
 * bytes, the response holding a reference that MHD's free callback drops; a value in a
 * disk-tier file is sent with sendfile from a dup() of its descriptor (MHD closes the descriptor
 * it is given, the value keeps its own); a buffer body is handed over, not copied. For HEAD MHD
 * sends the headers of the body (its Content-Length) without the body.
 *
 * Timeouts: MHD only knows one inactivity timeout per connection, where http.c has two: a
 * request (or a response's progress) must not stall longer than request_timeout_ms, and an idle
 * keep-alive connection is closed after idle_timeout_ms. We use the smaller of the two, rounded
 * up to whole seconds, so no stalled client is kept longer than configured; the price is that an
 * idle keep-alive connection may be closed earlier than idle_timeout_ms (which HTTP allows, and
 * clients handle). Unlike http.c, a client that trickles a request a byte at a time is not cut
 * off, since it is never inactive. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

enum {
    MAX_HEADERS = 64,                        /* request headers past these are ignored */
    LISTEN_BACKLOG = 4096,                   /* pending connections the kernel queues */
    CONNECTION_LIMIT = 64 * 1024,            /* open connections over all threads */
    CONNECTION_MEMORY_BYTES = 80 * 1024,     /* MHD's per-connection pool: headers of about
                                              * 64 KiB (as http.c takes) and room for I/O */
    MS_PER_SECOND = 1000
};

static const char SERVER_NAME[] = "aside";

struct http_server {
    http_config         cfg;
    http_handler        handler;
    void               *ctx;
    int                 port;
    int                 listen_fd; /* lent to MHD, taken back by MHD_quiesce_daemon */
    struct MHD_Daemon  *daemon;
};

/* The per-request context, from the URI log callback to the completion callback. */
typedef struct request {
    char  *target; /* the raw request target, NUL-terminated */
    size_t target_len;
    bool   headers_seen; /* the access handler had its first call */
    bool   too_large;    /* the body passed the limit: the rest is discarded */
    bool   answered;     /* a response is queued */
    buf    body;
} request;

typedef struct header_list {
    http_header items[MAX_HEADERS];
    size_t      count;
} header_list;

const char *http_status_text(int status)
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

/* ---- building responses ------------------------------------------------------------------- */

static void release_value(void *value) { aside_value_release(value); }

/* A response whose body is the value's bytes, sent from where they are. */
static struct MHD_Response *value_response(aside_value *v)
{
    uint64_t size = aside_value_size(v);
    const void *data = aside_value_data(v);
    if (data) { /* 0.9.75 takes a non-const buffer but never writes to it */
        struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
            (size_t)size, (void *)data, release_value, aside_value_retain(v));
        if (!r)
            aside_value_release(v);
        return r;
    }
    if (aside_value_fd(v) < 0 || size == 0)
        return MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    int fd = fcntl(aside_value_fd(v), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct MHD_Response *r = MHD_create_response_from_fd_at_offset64(size, fd, 0);
    if (!r)
        close(fd);
    return r;
}

/* A response that takes over the bytes of body. */
static struct MHD_Response *buffer_response(buf *body)
{
    size_t len = body->len;
    char *data = buf_take(body);
    if (!data)
        return NULL;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(data);
    return r;
}

/* Add the lines "Name: value\r\n" of lines, cut in place into NUL-terminated strings. */
static bool add_header_lines(struct MHD_Response *r, buf *lines)
{
    if (!lines->data)
        return true;
    char *p = lines->data, *end = lines->data + lines->len;
    while (p < end) {
        char *eol = memchr(p, '\r', (size_t)(end - p));
        char *colon = memchr(p, ':', (size_t)(end - p));
        if (!eol || !colon || colon > eol)
            return false;
        *eol = '\0';
        *colon = '\0';
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        if (MHD_add_response_header(r, p, value) != MHD_YES)
            return false;
        p = eol + 1 < end && eol[1] == '\n' ? eol + 2 : eol + 1;
    }
    return true;
}

static bool add_common_headers(struct MHD_Response *r, const char *content_type)
{
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_SERVER, SERVER_NAME) != MHD_YES)
        return false;
    return !content_type ||
           MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_YES;
}

/* The MHD response for the handler's response, or NULL if it cannot be built. */
static struct MHD_Response *build_response(http_response *res)
{
    if (res->headers.failed || res->body.failed)
        return NULL;
    struct MHD_Response *r = res->value ? value_response(res->value) : buffer_response(&res->body);
    if (!r)
        return NULL;
    if (!add_common_headers(r, res->content_type) || !add_header_lines(r, &res->headers)) {
        MHD_destroy_response(r);
        return NULL;
    }
    return r;
}

static enum MHD_Result queue(struct MHD_Connection *conn, int status, struct MHD_Response *r)
{
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r); /* the connection holds its own reference */
    return ok;
}

/* Answer an error of our own, {"error": {...}}, and close the connection after it. Returns
 * MHD_NO (close at once) when even that cannot be done. */
static enum MHD_Result queue_error(struct MHD_Connection *conn, int status, const char *code,
                                   const char *message)
{
    buf body;
    buf_init(&body);
    buf_printf(&body, "{\"error\": {\"code\": \"%s\", \"message\": \"%s\"}}", code, message);
    struct MHD_Response *r = buffer_response(&body);
    if (!r)
        return MHD_NO;
    if (!add_common_headers(r, "application/json") ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    return queue(conn, status, r);
}

/* Answer the request with an error of our own instead of the handler's response. */
static enum MHD_Result reject(struct MHD_Connection *conn, request *rq, int status,
                              const char *code, const char *message)
{
    enum MHD_Result ok = queue_error(conn, status, code, message);
    if (rq)
        rq->answered = ok == MHD_YES;
    return ok;
}

static enum MHD_Result reject_too_large(struct MHD_Connection *conn, request *rq)
{
    return reject(conn, rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                  "request body is larger than the limit");
}

static enum MHD_Result reject_no_memory(struct MHD_Connection *conn, request *rq)
{
    return reject(conn, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "out_of_memory",
                  "out of memory receiving the request");
}

/* ---- requests ----------------------------------------------------------------------------- */

static http_method_kind method_kind(const char *method)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0)
        return HTTP_METHOD_GET;
    if (strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
        return HTTP_METHOD_HEAD;
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
        return HTTP_METHOD_POST;
    if (strcmp(method, MHD_HTTP_METHOD_PUT) == 0)
        return HTTP_METHOD_PUT;
    if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0)
        return HTTP_METHOD_DELETE;
    return HTTP_METHOD_OTHER;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                      size_t name_len, const char *value, size_t value_len)
{
    (void)kind;
    header_list *list = cls;
    if (list->count == MAX_HEADERS)
        return MHD_NO; /* stop: the rest are ignored */
    list->items[list->count++] = (http_header){name, name_len, value ? value : "",
                                               value ? value_len : 0};
    return MHD_YES;
}

/* The URI log callback: the request's context, with its raw target. NULL if out of memory. */
static void *request_begin(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    request *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    rq->target = strdup(uri);
    if (!rq->target) {
        free(rq);
        return NULL;
    }
    rq->target_len = strlen(uri);
    buf_init(&rq->body);
    return rq;
}

static void request_end(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    request *rq = *con_cls;
    if (!rq)
        return;
    buf_free(&rq->body);
    free(rq->target);
    free(rq);
    *con_cls = NULL;
}

/* How the request says its body is framed. */
typedef struct framing {
    const char *length;           /* the first Content-Length */
    unsigned    length_count;
    bool        transfer_encoding;
} framing;

static bool name_is(const char *name, size_t name_len, const char *wanted)
{
    return name_len == strlen(wanted) && strncasecmp(name, wanted, name_len) == 0;
}

static enum MHD_Result note_framing(void *cls, enum MHD_ValueKind kind, const char *name,
                                    size_t name_len, const char *value, size_t value_len)
{
    (void)kind;
    (void)value_len;
    framing *f = cls;
    if (name_is(name, name_len, MHD_HTTP_HEADER_CONTENT_LENGTH) && f->length_count++ == 0)
        f->length = value;
    else if (name_is(name, name_len, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        f->transfer_encoding = true;
    return MHD_YES;
}

/* The first call, with the headers: reject an ambiguous framing (MHD would take the first of
 * two Content-Lengths, a way to smuggle a request past a proxy; http-parser refuses it) or a
 * declared body over the limit; otherwise wait for the body. */
static enum MHD_Result on_headers(const http_server *s, struct MHD_Connection *conn, request *rq)
{
    rq->headers_seen = true;
    framing f = {0};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, note_framing, &f);
    if (f.length_count > 1 || (f.length_count == 1 && f.transfer_encoding))
        return reject(conn, rq, MHD_HTTP_BAD_REQUEST, "bad_request",
                      "malformed HTTP request: unexpected content-length header");
    if (!f.length)
        return MHD_YES;
    unsigned long long declared = strtoull(f.length, NULL, 10); /* MHD has checked its syntax */
    if (declared > s->cfg.max_body_bytes)
        return reject_too_large(conn, rq);
    if (declared > 0 && !buf_reserve(&rq->body, (size_t)declared))
        return reject_no_memory(conn, rq);
    return MHD_YES;
}

/* A chunk of body: keep it, or once the body is too large, answer 413 and drop the rest. */
static enum MHD_Result on_upload(const http_server *s, struct MHD_Connection *conn, request *rq,
                                 const char *data, size_t *size)
{
    size_t len = *size;
    *size = 0;
    if (rq->answered || rq->too_large)
        return MHD_YES; /* discarded */
    if (rq->body.len + len <= s->cfg.max_body_bytes) {
        buf_append(&rq->body, data, len);
        return MHD_YES;
    }
    rq->too_large = true;
    buf_free(&rq->body);
    reject_too_large(conn, rq); /* MHD 0.9.75 refuses it mid-body: then on the last call */
    return MHD_YES;
}

/* The last call: run the handler on the complete request and queue its response. */
static enum MHD_Result on_complete(const http_server *s, struct MHD_Connection *conn,
                                   request *rq, const char *method)
{
    header_list headers;
    headers.count = 0;
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_header, &headers);
    http_request req = {
        .method = method_kind(method),
        .method_name = method,
        .target = rq->target,
        .target_len = rq->target_len,
        .headers = headers.items,
        .header_count = headers.count,
        .body = rq->body.data ? rq->body.data : "",
        .body_len = rq->body.len,
    };
    http_response res = {.status = MHD_HTTP_OK};
    buf_init(&res.headers);
    buf_init(&res.body);
    s->handler(s->ctx, &req, &res);
    struct MHD_Response *r = build_response(&res);
    int status = res.status;
    buf_free(&res.body);
    buf_free(&res.headers);
    aside_value_release(res.value);
    if (!r)
        return reject(conn, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out_of_memory",
                      "out of memory building the response");
    rq->answered = true;
    return queue(conn, status, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)url; /* unescaped and without the query: rq->target is used instead */
    (void)version;
    const http_server *s = cls;
    request *rq = *con_cls;
    if (!rq) /* the URI log callback ran out of memory */
        return reject_no_memory(conn, NULL);
    if (!rq->headers_seen)
        return on_headers(s, conn, rq);
    if (*upload_data_size > 0)
        return on_upload(s, conn, rq, upload_data, upload_data_size);
    if (rq->answered)
        return MHD_YES;
    if (rq->too_large)
        return reject_too_large(conn, rq);
    if (rq->body.failed)
        return reject_no_memory(conn, rq);
    return on_complete(s, conn, rq, method);
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
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
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

/* After a failed MHD_start_daemon: MHD 0.9.75 closes the socket it was given on some failures
 * (late ones) and not on others (bad options), so close fd only if it is still our listening
 * socket, not a number since reused. */
static void close_if_still_ours(int fd, int port)
{
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening &&
        bound_port(fd) == port)
        close(fd);
}

/* Whole seconds, rounded up; 0 (no limit) when ms is not positive. */
static unsigned seconds_of(int ms)
{
    return ms > 0 ? (unsigned)((ms + MS_PER_SECOND - 1) / MS_PER_SECOND) : 0;
}

/* MHD's one inactivity timeout: the stricter of the two (see the comment at the top). */
static unsigned inactivity_timeout(const http_config *cfg)
{
    unsigned idle = seconds_of(cfg->idle_timeout_ms);
    unsigned request = seconds_of(cfg->request_timeout_ms);
    if (idle == 0 || request == 0)
        return idle > request ? idle : request;
    return idle < request ? idle : request;
}

static struct MHD_Daemon *daemon_start(http_server *s)
{
    unsigned threads = s->cfg.threads > 0 ? (unsigned)s->cfg.threads : 1;
    /* Not MHD_USE_TURBO: it skips shutdown() before close and, measured with wrk, was no
     * faster (rather slower) than without it. MHD_USE_ITC lets MHD_quiesce_daemon work. */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, inactivity_timeout(&s->cfg),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY_BYTES,
        MHD_OPTION_URI_LOG_CALLBACK, request_begin, s,
        MHD_OPTION_NOTIFY_COMPLETED, request_end, s,
        MHD_OPTION_END);
}

aside_status http_server_start(const http_config *cfg, http_handler handler, void *ctx,
                               http_server **out, aside_error *err)
{
    signal(SIGPIPE, SIG_IGN);
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    s->cfg = *cfg;
    s->handler = handler;
    s->ctx = ctx;
    s->listen_fd = listen_on(cfg->bind, cfg->port, err);
    if (s->listen_fd < 0) {
        free(s);
        return ASIDE_ERR_INVALID;
    }
    s->port = bound_port(s->listen_fd);
    s->daemon = daemon_start(s);
    if (!s->daemon) {
        close_if_still_ours(s->listen_fd, s->port);
        free(s);
        return error_set(err, ASIDE_ERR_INTERNAL, "cannot start the HTTP daemon (libmicrohttpd)");
    }
    *out = s;
    return ASIDE_OK;
}

int http_server_port(const http_server *s) { return s->port; }

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    /* Quiescing gives the listening socket back, so it is closed here and MHD leaves it alone;
     * if MHD cannot quiesce, it still owns the socket and closes it when stopping. */
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    MHD_stop_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    free(s);
}
