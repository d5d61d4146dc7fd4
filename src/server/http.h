/* http.h -- the HTTP/1.1 server: an epoll event loop per worker thread over Debian's
 * http-parser (http.c): keep-alive, pipelining, bodies up to a limit, timeouts for slow and idle
 * clients, zero-copy responses (writev from a cached value, sendfile from a disk-tier file).
 *
 * The handler is first called on the event-loop thread that read the request, with may_block
 * false: it answers what it can without blocking (a memory hit, an error) and sets defer for the
 * rest, which is then handed to a pool of blocking threads (loads from disk or S3, writes) and
 * answered from there; the event loops keep serving meanwhile. The handler is called by many
 * threads at once and must be thread-safe.
 *
 * Limits that keep the server inside its resources: at most max_connections connections are
 * open (past it the listening sockets leave the event loops and new clients wait in the
 * kernel's queue until one closes); when accept itself runs out of descriptors, accepting
 * pauses for a moment instead of retrying at once; request bodies being received hold at most
 * max_bodies_in_flight_bytes together (a body past it is answered 503 with Retry-After before
 * it is read, one larger than it alone 413).
 *
 * Every response carries X-Request-Id: the request's own when sane (http_record), else one
 * made. A request ends when its response's last byte left (or its connection closed under it):
 * there, and only there, its record (http_record: the HTTP layer's facts and the handler's,
 * told through res->record) goes to the access log (access_log.h); counters of requests
 * belong beside that call (request_end in http.c). */
#ifndef ASIDE_SERVER_HTTP_H
#define ASIDE_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/uio.h>

#include "aside.h"
#include "util/util.h"

typedef enum http_method_kind {
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_PUT,
    HTTP_METHOD_DELETE,
    HTTP_METHOD_OTHER
} http_method_kind;

typedef struct http_header {
    const char *name;
    size_t      name_len;
    const char *value;
    size_t      value_len;
} http_header;

/* A request; every pointer is valid only during the handler call. */
typedef struct http_request {
    http_method_kind   method;
    const char        *method_name;
    const char        *target; /* the raw request target: path and query */
    size_t             target_len;
    const http_header *headers;
    size_t             header_count;
    const char        *body;
    size_t             body_len;
    bool               may_block; /* false on an event-loop thread: defer what would block */
    int64_t            received_ns; /* clock_mono_ns() when the message, read whole, went to
                                       the handler (0: unknown); a deferred request keeps it */
} http_request;

/* The value of the first header called name (case-insensitive), or NULL. */
const char *http_request_header(const http_request *req, const char *name, size_t *len);

/* What is known of a request once it is over, for the access log (access_log.h) and counters:
 * the HTTP layer fills its part; the handler tells its part through res->record
 * (http_record_note). Every pointer is valid only during the call that reads the record. */
enum {
    HTTP_REQUEST_ID_MAX = 128,  /* an X-Request-Id longer than this is replaced by one made */
    HTTP_RECORD_NAME_MAX = 64,  /* a function's or a token's name: its first bytes are kept */
    HTTP_RECORD_KEY_MAX = 256,  /* a key: its first bytes are kept */
    HTTP_CLIENT_MAX = 64        /* "[address]:port" */
};

typedef struct http_record {
    /* the HTTP layer's part */
    const char *method;      /* "GET", ...; NULL when the request line was not read */
    int         status;
    uint64_t    bytes_sent;  /* status line, headers and body, as written to the socket */
    int64_t     started_ns;  /* clock_mono_ns() at the request's first byte */
    int64_t     duration_us; /* from the request's first byte to its response's last */
    const char *client;      /* the peer, "address:port" */
    char        request_id[HTTP_REQUEST_ID_MAX + 1]; /* X-Request-Id, sent with the response */
    size_t      request_id_len;
    /* the handler's part; empty (and NULL) when it did not get that far. Each string is
     * NUL-terminated and its length kept beside it */
    char        function[HTTP_RECORD_NAME_MAX + 1];
    size_t      function_len;
    char        key[HTTP_RECORD_KEY_MAX + 1];
    size_t      key_len;
    char        token_name[HTTP_RECORD_NAME_MAX + 1];
    size_t      token_name_len;
    const char *source;      /* a static "memory", "disk" or "sor" when a value was read */
} http_record;

/* The handler's part of r (NULL: nothing to do): each string may be NULL, and is copied up to
 * its bound; source must be static. */
void http_record_note(http_record *r, const char *function, const char *key, size_t key_len,
                      const char *token_name, const char *source);

/* A body made of memory segments, sent in order with writev, without copying; owner keeps them
 * alive until release(owner) is called, after the last byte left (or the response is dropped). */
typedef struct http_segments {
    struct iovec *iov; /* owned by owner */
    size_t        count;
    uint64_t      total_bytes;
    void         *owner;
    void        (*release)(void *owner);
} http_segments;

/* The handler fills a response. The body is body (a buffer), value (a cached value the response
 * holds a reference to, sent without copying) or segments. */
typedef struct http_response {
    int          status;
    const char  *content_type; /* a static string */
    buf          headers;      /* extra header lines, each ending in "\r\n" */
    buf          body;
    aside_value *value;
    http_segments segments;    /* used when count > 0 */
    bool         omit_body;    /* HEAD: send the headers of the body, not the body */
    bool         defer;        /* (when !may_block) call me again on a thread that may block */
    http_record *record;       /* the request's record (set by the HTTP layer; may be NULL) */
} http_response;

typedef void (*http_handler)(void *ctx, const http_request *req, http_response *res);

/* A 503 means the server is short of something for a moment (memory, file descriptors, room
 * for request bodies) and changed nothing: it carries this header, retry in a second. */
#define HTTP_UNAVAILABLE 503
#define HTTP_RETRY_AFTER "Retry-After: 1\r\n"

typedef struct http_config {
    const char *bind;
    int         port;               /* 0: any free port */
    int         threads;
    uint64_t    max_body_bytes;     /* larger bodies get 413 */
    int         idle_timeout_ms;    /* a keep-alive connection idle this long is closed */
    int         request_timeout_ms; /* a request must arrive, and a response leave, this fast */
    int         blocking_threads;   /* the pool for requests that load, fetch or write */
    int         max_connections;    /* open connections at most (0: no limit) */
    uint64_t    max_bodies_in_flight_bytes; /* request bodies being received, all connections
                                               together (0: no limit) */
    const char *unix_path;          /* also listen on a Unix socket here (its folder decides
                                       who may connect), or NULL */
} http_config;

typedef struct http_server http_server;

/* Bind and start the worker threads. The caller stops them with http_server_stop(). */
aside_status http_server_start(const http_config *cfg, http_handler handler, void *ctx,
                               http_server **out, aside_error *err);
/* The port actually bound (useful with port 0). */
int          http_server_port(const http_server *s);
/* Change max_connections (0: no limit); connections open past it stay, new ones wait. */
void         http_server_set_max_connections(http_server *s, int max_connections);
/* Begin the drain, and return at once: each worker closes its listening socket (new clients
 * are refused) and its idle connections; a connection with a request in flight is served to
 * the end, its response saying "Connection: close", then closed. */
void         http_server_drain(http_server *s);
/* Connections open now, all workers together (after http_server_drain: those in flight). */
int          http_server_connections(http_server *s);
/* Requests whose handler runs on the blocking pool now: http_server_stop waits for them. */
int          http_server_handlers_running(http_server *s);
/* Stop accepting, close every connection, join the threads and free the server. */
void         http_server_stop(http_server *s);

/* For fuzzing and tests: serve data (len bytes) as what a client sent on one connection
 * before closing its side, through the code a worker runs on an accepted socket (parsing,
 * limits from cfg, pipelining, handler calls, responses), on the calling thread: a deferred
 * request is answered there, as the blocking pool would. Only cfg's body limit and timeouts
 * apply; responses are dropped. Returns the number of requests handler was given. */
size_t       http_serve_bytes(const http_config *cfg, http_handler handler, void *ctx,
                              const void *data, size_t len);

#endif
