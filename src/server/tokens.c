/* tokens.c -- bearer tokens with scopes and key prefixes: the tokens file, matching a secret,
 * the set in force and its reload.
 *
 * The trust boundary. Two things come from outside: the secret a client brings in its
 * Authorization header, and the tokens file. The client is not trusted at all: its secret is
 * only ever hashed (SHA-256) and compared with every token's hash in constant time
 * (CRYPTO_memcmp, and every token is compared whatever matched before), so neither the time of
 * an answer nor a log line tells anything of a secret; a secret is never stored, logged or
 * answered. The tokens file is the operator's, but it is still checked as input: at most
 * TOKENS_FILE_MAX_BYTES, TOKENS_MAX_TOKENS tokens and TOKENS_MAX_PREFIXES prefixes each, a
 * name of letters, digits, - _ . unique in the file, a hash written "sha256:" and 64 hex
 * digits (anything else, a secret in clear, an MD5, a bcrypt hash, is refused with its line),
 * known scopes only, prefixes that are relative keys. A file that fails any of it is refused
 * whole: at start the server does not start, on SIGHUP the tokens in force stay.
 *
 * Sets are immutable once shared and reference counted; the tokens in force are a pointer
 * swapped under a mutex, so a reload never frees a set a call is using. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "tokens.h"
#include "util/util.h"

struct tokens_set {
    atomic_size_t refs;
    tokens_entry *entries;
    size_t        count, capacity;
    char        **strings; /* names and prefixes, owned */
    size_t        string_count, string_capacity;
};

/* ---- hashing ------------------------------------------------------------------------------ */

static void hash_secret(const char *secret, size_t len, unsigned char out[TOKENS_HASH_BYTES])
{
    unsigned int out_len = 0;
    if (!EVP_Digest(secret, len, out, &out_len, EVP_sha256(), NULL))
        memset(out, 0, TOKENS_HASH_BYTES); /* matches no file's hash but the all-zero one */
}

void tokens_hash_text(const char *secret, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char h[TOKENS_HASH_BYTES];
    hash_secret(secret, len, h);
    memcpy(out, "sha256:", 7);
    for (size_t i = 0; i < TOKENS_HASH_BYTES; i++) {
        out[7 + 2 * i] = hex[h[i] >> 4];
        out[8 + 2 * i] = hex[h[i] & 15];
    }
    out[7 + 2 * TOKENS_HASH_BYTES] = '\0';
}

/* ---- sets --------------------------------------------------------------------------------- */

static tokens_set *set_new(void)
{
    tokens_set *s = calloc(1, sizeof *s);
    if (s)
        atomic_init(&s->refs, 1);
    return s;
}

void tokens_set_retain(tokens_set *s) { atomic_fetch_add(&s->refs, 1); }

void tokens_set_release(tokens_set *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->string_count; i++)
        free(s->strings[i]);
    free(s->strings);
    free(s->entries);
    free(s);
}

size_t tokens_set_count(const tokens_set *s) { return s->count; }

/* A copy of text[0..len) owned by s, or NULL when out of memory. */
static const char *set_string(tokens_set *s, const char *text, size_t len)
{
    if (s->string_count == s->string_capacity) {
        size_t cap = s->string_capacity ? 2 * s->string_capacity : 16;
        char **grown = realloc(s->strings, cap * sizeof *grown);
        if (!grown)
            return NULL;
        s->strings = grown;
        s->string_capacity = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, text, len);
    copy[len] = '\0';
    s->strings[s->string_count++] = copy;
    return copy;
}

static tokens_entry *set_next_entry(tokens_set *s)
{
    if (s->count == s->capacity) {
        size_t cap = s->capacity ? 2 * s->capacity : 8;
        tokens_entry *grown = realloc(s->entries, cap * sizeof *grown);
        if (!grown)
            return NULL;
        s->entries = grown;
        s->capacity = cap;
    }
    tokens_entry *e = &s->entries[s->count];
    memset(e, 0, sizeof *e);
    return e;
}

static const tokens_entry *find_name(const tokens_set *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->count; i++) {
        if (strlen(s->entries[i].name) == len && memcmp(s->entries[i].name, name, len) == 0)
            return &s->entries[i];
    }
    return NULL;
}

static const tokens_entry *find_hash(const tokens_set *s, const unsigned char *hash)
{
    for (size_t i = 0; i < s->count; i++) {
        if (memcmp(s->entries[i].hash, hash, TOKENS_HASH_BYTES) == 0)
            return &s->entries[i];
    }
    return NULL;
}

const tokens_entry *tokens_set_match(const tokens_set *s, const char *secret, size_t len)
{
    unsigned char h[TOKENS_HASH_BYTES];
    hash_secret(secret, len, h);
    const tokens_entry *found = NULL;
    for (size_t i = 0; i < s->count; i++) { /* no early exit: every hash is compared */
        bool same = CRYPTO_memcmp(s->entries[i].hash, h, TOKENS_HASH_BYTES) == 0;
        found = same ? &s->entries[i] : found;
    }
    return found;
}

aside_status tokens_set_add(tokens_set *s, const char *name, const char *secret,
                            unsigned scopes, aside_error *err)
{
    unsigned char h[TOKENS_HASH_BYTES];
    hash_secret(secret, strlen(secret), h);
    if (find_name(s, name, strlen(name)))
        return error_set(err, ASIDE_ERR_CONFLICT, "a token named %s is already there", name);
    if (find_hash(s, h))
        return error_set(err, ASIDE_ERR_CONFLICT, "the secret of %s is another token's", name);
    tokens_entry *e = set_next_entry(s);
    const char *copy = e ? set_string(s, name, strlen(name)) : NULL;
    if (!copy)
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    e->name = copy;
    e->scopes = scopes;
    memcpy(e->hash, h, sizeof h);
    s->count++;
    return ASIDE_OK;
}

bool tokens_entry_allows_key(const tokens_entry *e, const char *key, size_t len)
{
    if (e->prefix_count == 0)
        return true;
    for (size_t i = 0; i < e->prefix_count; i++) {
        size_t n = strlen(e->prefixes[i]);
        if (n <= len && memcmp(key, e->prefixes[i], n) == 0)
            return true;
    }
    return false;
}

const char *tokens_scopes_text(unsigned mask)
{
    static const char *const texts[] = {"",           "read",       "write",       "read,write",
                                        "admin",      "read,admin", "write,admin",
                                        "read,write,admin"};
    return texts[mask & TOKENS_EVERY_SCOPE];
}

/* ---- the file ----------------------------------------------------------------------------- */

/* One line being parsed: its fields, split on blanks. */
typedef struct line_fields {
    const char *at[3 + TOKENS_MAX_PREFIXES + 1];
    size_t      len[3 + TOKENS_MAX_PREFIXES + 1];
    size_t      count; /* may be one more than fits: too many fields */
} line_fields;

static void split_fields(const char *line, size_t len, line_fields *f)
{
    f->count = 0;
    size_t cap = sizeof f->at / sizeof f->at[0];
    for (size_t i = 0; i < len && f->count < cap;) {
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t')
            i++;
        if (i > start) {
            f->at[f->count] = line + start;
            f->len[f->count++] = i - start;
        }
    }
}

static bool is_name(const char *s, size_t len)
{
    if (len == 0 || len > TOKENS_NAME_MAX_BYTES)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        if (!ok)
            return false;
    }
    return true;
}

/* "sha256:" and 64 hex digits into out; false for anything else. */
static bool parse_hash(const char *s, size_t len, unsigned char out[TOKENS_HASH_BYTES])
{
    if (len != 7 + 2 * TOKENS_HASH_BYTES || memcmp(s, "sha256:", 7) != 0)
        return false;
    for (size_t i = 0; i < TOKENS_HASH_BYTES; i++) {
        int hi = text_hex_digit(s[7 + 2 * i]), lo = text_hex_digit(s[8 + 2 * i]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi * 16 + lo);
    }
    return true;
}

/* "read,write" into a mask; 0 for an unknown or empty scope. */
static unsigned parse_scopes(const char *s, size_t len)
{
    static const struct {
        const char *name;
        unsigned    bit;
    } names[] = {{"read", TOKENS_READ}, {"write", TOKENS_WRITE}, {"admin", TOKENS_ADMIN}};
    unsigned mask = 0;
    for (size_t i = 0; i <= len;) {
        size_t n = 0;
        while (i + n < len && s[i + n] != ',')
            n++;
        unsigned bit = 0;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            if (strlen(names[k].name) == n && memcmp(names[k].name, s + i, n) == 0)
                bit = names[k].bit;
        }
        if (!bit)
            return 0;
        mask |= bit;
        i += n + 1;
    }
    return mask;
}

/* A key prefix: relative, no . or .. part, no control character or backslash. */
static bool is_key_prefix(const char *s, size_t len)
{
    if (s[0] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\')
            return false;
    }
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        while (i + n < len && s[i + n] != '/')
            n++;
        bool last = i + n == len;
        if ((n == 1 && s[i] == '.') || (n == 2 && s[i] == '.' && s[i + 1] == '.') ||
            (n == 0 && !last))
            return false;
        i += n + 1;
    }
    return true;
}

#define BAD_LINE(...) error_set(err, ASIDE_ERR_INVALID, __VA_ARGS__)

/* One token's line into s. */
static aside_status parse_line(tokens_set *s, const line_fields *f, const char *origin,
                               size_t line, aside_error *err)
{
    if (f->count < 3)
        return BAD_LINE("%s:%zu: a token is a name, a hash (sha256:...) and scopes "
                        "(read,write,admin), then key prefixes if any", origin, line);
    if (f->count > 3 + TOKENS_MAX_PREFIXES)
        return BAD_LINE("%s:%zu: more than %d key prefixes", origin, line, TOKENS_MAX_PREFIXES);
    if (!is_name(f->at[0], f->len[0]))
        return BAD_LINE("%s:%zu: a token's name is 1 to %d letters, digits, - _ or .", origin,
                        line, TOKENS_NAME_MAX_BYTES);
    if (find_name(s, f->at[0], f->len[0]))
        return BAD_LINE("%s:%zu: the name %.*s is another line's too", origin, line,
                        (int)f->len[0], f->at[0]);
    unsigned char h[TOKENS_HASH_BYTES];
    if (!parse_hash(f->at[1], f->len[1], h))
        return BAD_LINE("%s:%zu: the hash of %.*s is not \"sha256:\" and 64 hex digits (a "
                        "secret is never written in the file: aside-server --hash-token makes "
                        "its hash)", origin, line, (int)f->len[0], f->at[0]);
    if (find_hash(s, h))
        return BAD_LINE("%s:%zu: the hash of %.*s is another line's too", origin, line,
                        (int)f->len[0], f->at[0]);
    unsigned scopes = parse_scopes(f->at[2], f->len[2]);
    if (!scopes)
        return BAD_LINE("%s:%zu: scopes are read, write and admin, separated by commas", origin,
                        line);
    tokens_entry *e = set_next_entry(s);
    if (!e || !(e->name = set_string(s, f->at[0], f->len[0])))
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    e->scopes = scopes;
    memcpy(e->hash, h, sizeof h);
    for (size_t i = 3; i < f->count; i++) {
        if (!is_key_prefix(f->at[i], f->len[i]))
            return BAD_LINE("%s:%zu: the key prefix %.*s must be relative, without . or .. "
                            "parts or control characters", origin, line, (int)f->len[i],
                            f->at[i]);
        if (!(e->prefixes[e->prefix_count++] = set_string(s, f->at[i], f->len[i])))
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    }
    s->count++;
    return ASIDE_OK;
}

tokens_set *tokens_set_parse(const char *text, size_t len, const char *origin, aside_error *err)
{
    tokens_set *s = set_new();
    if (!s) {
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t line = 0;
    for (size_t i = 0; i < len;) {
        size_t end = i;
        while (end < len && text[end] != '\n')
            end++;
        line++;
        size_t n = end - i;
        if (n && text[i + n - 1] == '\r')
            n--;
        line_fields f;
        const char *hash_sign = memchr(text + i, '#', n);
        split_fields(text + i, hash_sign ? (size_t)(hash_sign - (text + i)) : n, &f);
        aside_status st = ASIDE_OK;
        if (memchr(text + i, '\0', n))
            st = BAD_LINE("%s:%zu: a NUL byte", origin, line);
        else if (f.count && s->count == TOKENS_MAX_TOKENS)
            st = BAD_LINE("%s:%zu: more than %d tokens", origin, line, TOKENS_MAX_TOKENS);
        else if (f.count)
            st = parse_line(s, &f, origin, line, err);
        if (st != ASIDE_OK) {
            tokens_set_release(s);
            return NULL;
        }
        i = end + 1;
    }
    return s;
}

tokens_set *tokens_set_load(const char *path, aside_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        error_set(err, ASIDE_ERR_INVALID, "%s: cannot open the tokens file: %s", path,
                  strerror(errno));
        return NULL;
    }
    buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= TOKENS_FILE_MAX_BYTES)
        buf_append(&b, chunk, n);
    bool failed = ferror(f);
    fclose(f);
    tokens_set *s = NULL;
    if (failed)
        error_set(err, ASIDE_ERR_INVALID, "%s: cannot read the tokens file", path);
    else if (b.len > TOKENS_FILE_MAX_BYTES)
        error_set(err, ASIDE_ERR_INVALID, "%s: the tokens file is over %d bytes", path,
                  TOKENS_FILE_MAX_BYTES);
    else if (b.failed)
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    else
        s = tokens_set_parse(b.data ? b.data : "", b.len, path, err);
    buf_free(&b);
    return s;
}

/* ---- the tokens in force ------------------------------------------------------------------ */

/* A token given by its secret, added to every set read. Its secret is hashed at once. */
typedef struct fixed_token {
    char         *name;
    unsigned      scopes;
    unsigned char hash[TOKENS_HASH_BYTES];
} fixed_token;

enum { TOKENS_MAX_FIXED = 4 };

struct tokens {
    pthread_mutex_t lock; /* guards current */
    tokens_set     *current;
    char           *file; /* or NULL */
    fixed_token     fixed[TOKENS_MAX_FIXED];
    size_t          fixed_count;
};

/* Add the fixed tokens to s (not yet shared). */
static aside_status add_fixed(const tokens *t, tokens_set *s, aside_error *err)
{
    for (size_t i = 0; i < t->fixed_count; i++) {
        const fixed_token *x = &t->fixed[i];
        if (find_name(s, x->name, strlen(x->name)))
            return error_set(err, ASIDE_ERR_INVALID, "the name %s is the server's own token's",
                             x->name);
        if (find_hash(s, x->hash))
            return error_set(err, ASIDE_ERR_INVALID, "a token of the file has the secret of "
                             "%s", x->name);
        tokens_entry *e = set_next_entry(s);
        if (!e || !(e->name = set_string(s, x->name, strlen(x->name))))
            return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        e->scopes = x->scopes;
        memcpy(e->hash, x->hash, TOKENS_HASH_BYTES);
        s->count++;
    }
    return ASIDE_OK;
}

/* The file's set with the fixed tokens, or NULL with err set. */
static tokens_set *read_set(const tokens *t, aside_error *err)
{
    tokens_set *s = t->file ? tokens_set_load(t->file, err) : set_new();
    if (!s && !t->file)
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    if (s && add_fixed(t, s, err) != ASIDE_OK) {
        tokens_set_release(s);
        return NULL;
    }
    return s;
}

tokens *tokens_create(const char *file, aside_error *err)
{
    tokens *t = calloc(1, sizeof *t);
    if (!t || (file && !(t->file = strdup(file)))) {
        free(t);
        error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    if (!(t->current = read_set(t, err))) {
        tokens_destroy(t);
        return NULL;
    }
    return t;
}

aside_status tokens_add_fixed(tokens *t, const char *name, const char *secret, unsigned scopes,
                              aside_error *err)
{
    if (t->fixed_count == TOKENS_MAX_FIXED)
        return error_set(err, ASIDE_ERR_INVALID, "too many of the server's own tokens");
    fixed_token *x = &t->fixed[t->fixed_count];
    if (!(x->name = strdup(name)))
        return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
    x->scopes = scopes;
    hash_secret(secret, strlen(secret), x->hash);
    t->fixed_count++;
    aside_status st = tokens_set_add(t->current, name, secret, scopes, err);
    if (st != ASIDE_OK)
        free(t->fixed[--t->fixed_count].name);
    return st;
}

aside_status tokens_add_random(tokens *t, const char *name, unsigned scopes, char *secret,
                               aside_error *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[(TOKENS_SECRET_TEXT_BYTES - 1) / 2];
    size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno != EINTR)
            return error_set_errno(err, errno, ASIDE_ERR_INTERNAL, "getrandom");
        got += n > 0 ? (size_t)n : 0;
    }
    for (size_t i = 0; i < sizeof bytes; i++) {
        secret[2 * i] = hex[bytes[i] >> 4];
        secret[2 * i + 1] = hex[bytes[i] & 15];
    }
    secret[2 * sizeof bytes] = '\0';
    memset(bytes, 0, sizeof bytes);
    return tokens_add_fixed(t, name, secret, scopes, err);
}

tokens_set *tokens_acquire(tokens *t)
{
    pthread_mutex_lock(&t->lock);
    tokens_set *s = t->current;
    tokens_set_retain(s);
    pthread_mutex_unlock(&t->lock);
    return s;
}

aside_status tokens_reload(tokens *t, aside_error *err)
{
    if (!t->file)
        return ASIDE_OK;
    tokens_set *next = read_set(t, err);
    if (!next)
        return err->status;
    pthread_mutex_lock(&t->lock);
    tokens_set *old = t->current;
    t->current = next;
    pthread_mutex_unlock(&t->lock);
    tokens_set_release(old);
    return ASIDE_OK;
}

void tokens_on_sighup(tokens *t)
{
    if (!t || !t->file)
        return;
    aside_error err;
    if (tokens_reload(t, &err) != ASIDE_OK) {
        log_line("error", "tokens: %s; the tokens in force are kept", err.message);
        return;
    }
    tokens_set *s = tokens_acquire(t);
    buf names = {0};
    for (size_t i = 0; i < s->count; i++)
        buf_printf(&names, "%s%s (%s)", i ? ", " : "", s->entries[i].name,
                   tokens_scopes_text(s->entries[i].scopes));
    log_line("info", "tokens: reloaded %s: %zu tokens: %s", t->file, s->count,
             names.data && !names.failed ? names.data : "");
    buf_free(&names);
    tokens_set_release(s);
}

void tokens_destroy(tokens *t)
{
    if (!t)
        return;
    tokens_set_release(t->current);
    for (size_t i = 0; i < t->fixed_count; i++)
        free(t->fixed[i].name);
    pthread_mutex_destroy(&t->lock);
    free(t->file);
    free(t);
}

/* ---- --hash-token ------------------------------------------------------------------------- */

enum { HASH_TOKEN_MIN_BYTES = 16, HASH_TOKEN_MAX_BYTES = 4096 };

int tokens_print_hash(FILE *in, FILE *out)
{
    char secret[HASH_TOKEN_MAX_BYTES + 2];
    if (!fgets(secret, sizeof secret, in)) {
        fprintf(stderr, "aside-server: --hash-token reads the secret on its standard input\n");
        return 1;
    }
    size_t len = strcspn(secret, "\r\n");
    secret[len] = '\0';
    size_t chars = strspn(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789-._~+/");
    bool ok = len >= HASH_TOKEN_MIN_BYTES && len <= HASH_TOKEN_MAX_BYTES && chars > 0 &&
              secret[chars + strspn(secret + chars, "=")] == '\0';
    if (!ok) {
        fprintf(stderr, "aside-server: a secret is %d to %d letters, digits and -._~+/ (then = "
                "signs), as a bearer token must be\n", HASH_TOKEN_MIN_BYTES,
                HASH_TOKEN_MAX_BYTES);
        return 1;
    }
    char text[TOKENS_HASH_TEXT_BYTES];
    tokens_hash_text(secret, len, text);
    memset(secret, 0, sizeof secret);
    fprintf(out, "%s\n", text);
    return ferror(out) ? 1 : 0;
}
