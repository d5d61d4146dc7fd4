/* tokens.h -- who may call the API: bearer tokens with scopes and key prefixes (tokens.c).
 *
 * A token is a name, the SHA-256 of its secret, its scopes (read, write, admin) and, when
 * given, the key prefixes it is limited to. The tokens file (ASIDE_TOKENS_FILE) holds one per
 * line:
 *
 *     # name   hash                        scopes            key prefixes (optional)
 *     reports  sha256:<64 hex digits>      read              reports/ shared/
 *     ops      sha256:<64 hex digits>      read,write,admin
 *
 * (`aside-server --hash-token` prints the hash of the secret it reads on its standard input.)
 * A set of tokens is immutable and reference counted; the tokens in force (a `tokens`) are one
 * set, replaced whole when the file is read again (SIGHUP), so a call keeps the set it started
 * with until it ends. The server never holds a secret it was given in the file: only hashes. */
#ifndef ASIDE_SERVER_TOKENS_H
#define ASIDE_SERVER_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "aside.h"

/* The scopes, as bits: what a function of the API asks of its caller (routes.h). */
enum {
    TOKENS_READ = 1u << 0,  /* read values, frames, telemetry; call users' functions */
    TOKENS_WRITE = 1u << 1, /* put, write, update, delete, change collections and retention */
    TOKENS_ADMIN = 1u << 2, /* functions' admin, sql into=, compact, spec reload, evict */
    TOKENS_EVERY_SCOPE = TOKENS_READ | TOKENS_WRITE | TOKENS_ADMIN
};

enum {
    TOKENS_HASH_BYTES = 32,          /* SHA-256 */
    TOKENS_NAME_MAX_BYTES = 64,      /* a name: letters, digits, - _ . */
    TOKENS_MAX_PREFIXES = 16,        /* key prefixes of one token */
    TOKENS_MAX_TOKENS = 4096,        /* lines of a tokens file that name a token */
    TOKENS_FILE_MAX_BYTES = 1 << 20  /* a tokens file larger than this is refused */
};

/* One token. Every pointer lives as long as the set holding it. */
typedef struct tokens_entry {
    const char  *name;
    unsigned     scopes;                          /* TOKENS_READ | ... */
    const char  *prefixes[TOKENS_MAX_PREFIXES];   /* the keys it may name; none: every key */
    size_t       prefix_count;
    unsigned char hash[TOKENS_HASH_BYTES];        /* SHA-256 of the secret */
} tokens_entry;

/* An immutable set of tokens, reference counted. */
typedef struct tokens_set tokens_set;

/* Parse a tokens file's text (origin names it in errors). On success returns a set holding
 * one reference; on error NULL, and err says "origin:line: what". An empty file is a set with
 * no token (nothing opens the API but the tokens added with tokens_set_add). */
tokens_set         *tokens_set_parse(const char *text, size_t len, const char *origin,
                                     aside_error *err);
/* tokens_set_parse of the file at path (at most TOKENS_FILE_MAX_BYTES). */
tokens_set         *tokens_set_load(const char *path, aside_error *err);
/* Add a token whose secret is given (not its hash): ASIDE_TOKEN, the functions' own. Only
 * before the set is shared. Fails (name or secret already in the set, out of memory) with
 * err set. */
aside_status        tokens_set_add(tokens_set *s, const char *name, const char *secret,
                                   unsigned scopes, aside_error *err);
/* How many tokens s holds. */
size_t              tokens_set_count(const tokens_set *s);
/* The token whose secret is secret[0..len), or NULL. Every token's hash is compared, each in
 * constant time, whatever matches. */
const tokens_entry *tokens_set_match(const tokens_set *s, const char *secret, size_t len);
void                tokens_set_retain(tokens_set *s);
void                tokens_set_release(tokens_set *s);

/* True if e may name key[0..len): it has no prefixes, or key begins with one of them. */
bool                tokens_entry_allows_key(const tokens_entry *e, const char *key, size_t len);
/* "read,write,admin" for the scopes of mask (the empty string for none). */
const char         *tokens_scopes_text(unsigned mask);

/* The tokens in force, replaced on reload; thread-safe. */
typedef struct tokens tokens;

/* The tokens of file (NULL: no file) plus the tokens added by tokens_add_fixed, kept across
 * reloads. On a bad file NULL with err set. */
tokens             *tokens_create(const char *file, aside_error *err);
/* A token added to the set in force and to every set read later (before serving). */
aside_status        tokens_add_fixed(tokens *t, const char *name, const char *secret,
                                     unsigned scopes, aside_error *err);
/* A token of a random secret made here (256 bits from getrandom), added as tokens_add_fixed
 * does; its secret, as hex, goes to secret (TOKENS_SECRET_TEXT_BYTES) for whoever must bring
 * it: the function workers. */
enum { TOKENS_SECRET_TEXT_BYTES = 2 * 32 + 1 };
aside_status        tokens_add_random(tokens *t, const char *name, unsigned scopes,
                                      char *secret, aside_error *err);
/* The set in force, with a reference for the caller (tokens_set_release). */
tokens_set         *tokens_acquire(tokens *t);
/* Read the file again. A good one replaces the set in force (calls under way keep theirs); a
 * bad one changes nothing, err says why. Without a file: ASIDE_OK, nothing changes. */
aside_status        tokens_reload(tokens *t, aside_error *err);
/* tokens_reload on SIGHUP, logged: the names of the tokens now in force, or why the file was
 * refused (never a secret). */
void                tokens_on_sighup(tokens *t);
void                tokens_destroy(tokens *t);

/* "sha256:<hex>" of secret[0..len), into out (at least TOKENS_HASH_TEXT_BYTES). */
enum { TOKENS_HASH_TEXT_BYTES = 7 + 2 * TOKENS_HASH_BYTES + 1 };
void                tokens_hash_text(const char *secret, size_t len, char *out);
/* --hash-token: read a secret from in (one line; its newline dropped), print its hash line to
 * out. 0 on success, else 1 with a message on stderr. */
int                 tokens_print_hash(FILE *in, FILE *out);

#endif
