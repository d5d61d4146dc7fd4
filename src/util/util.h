/* util.h -- small building blocks shared by every module.
 *
 * buf: a growable byte buffer for building responses and paths. It never fails silently: an
 * allocation failure sets buf.failed, later appends become no-ops, and the owner checks the flag
 * once at the end (so building code stays linear, without a check after every append).
 *
 * Also: error reporting into an aside_error, clocks with their unit in the name, JSON string
 * escaping and base64 for writing responses. */
#ifndef ASIDE_UTIL_H
#define ASIDE_UTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aside.h"

typedef struct buf {
    char  *data;
    size_t len;
    size_t cap;
    bool   failed; /* an allocation failed; contents are incomplete */
} buf;

void buf_init(buf *b);
void buf_free(buf *b);
void buf_reset(buf *b);                 /* len = 0, keeps the memory */
bool buf_reserve(buf *b, size_t extra); /* room for extra more bytes */
void buf_append(buf *b, const void *data, size_t len);
void buf_puts(buf *b, const char *s);
void buf_putc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_put_u64(buf *b, uint64_t v);
/* A JSON string literal, quotes included; invalid UTF-8 bytes become U+FFFD. */
void buf_put_json_string(buf *b, const char *s, size_t len);
void buf_put_base64(buf *b, const void *data, size_t len);
/* Append the bytes base64 text (len chars, standard alphabet) stands for; false if malformed. */
bool buf_put_base64_decoded(buf *b, const char *text, size_t len);
/* Hand over the bytes (NUL-terminated) to the caller, who frees them; b is left empty. */
char *buf_take(buf *b);

/* Set err (if not NULL) and return status. */
aside_status error_set(aside_error *err, aside_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* error_set for a failed system call whose errno is errnum: status, unless the process ran out
 * of file descriptors (EMFILE, ENFILE), which is ASIDE_ERR_NOMEM with the code
 * "too_many_open_files": short of a resource for a moment, like memory, so the call changed
 * nothing and may be retried. */
aside_status error_set_errno(aside_error *err, int errnum, aside_status status,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Copy src into err (if not NULL) and return its status. */
aside_status error_copy(aside_error *err, const aside_error *src);

/* Memory this process may use: physical RAM, or less when a cgroup (v2 memory.max, or v1
 * memory.limit_in_bytes) limits it, as in a container. 0 if unknown. */
uint64_t system_memory_bytes(void);

int64_t clock_unix_ms(void);
int64_t clock_mono_ns(void);
/* Initialise cond to measure timeouts on CLOCK_MONOTONIC (immune to wall-clock steps). */
void    cond_init_monotonic(pthread_cond_t *cond);
/* The CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait on such a cond. */
struct timespec clock_mono_after_ms(int64_t ms);

enum { IDENTIFIER_MAX_BYTES = 100 }; /* a function's name: a file name NAME.py, kept short */
/* True if s is a Python identifier (ASCII letters, digits and _, not starting with a digit) of
 * at most IDENTIFIER_MAX_BYTES bytes, as a function's name must be. NULL is not. */
bool    text_is_identifier(const char *s);
/* True if s equals one of the strings of list (NULL-terminated). */
bool    text_in_list(const char *s, const char *const *list);
/* The value of a hexadecimal digit (either case), or -1 for any other character. */
int     text_hex_digit(char ch);

/* Log a line to stderr: "aside: <level>: <message>". */
void log_line(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
