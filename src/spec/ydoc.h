/* ydoc.h -- a YAML file as a tree of nodes, read with precise errors (libyaml).
 *
 * The file is loaded whole into libyaml's document model: scalar, sequence and mapping nodes,
 * each with the mark (line, column) where it starts. A schema (spec.c) walks that tree with the
 * readers below, one per kind of value; each either gives the value or reports the node at
 * fault as "NAME:LINE:COLUMN: what" (LINE and COLUMN from 1) and returns false. The first
 * report wins: after it, r->failed is set and further reports are dropped, so a schema can stop
 * at the first false. Nothing here knows a field of the schema; the messages name the field
 * the caller gives. */
#ifndef ASIDE_YDOC_H
#define ASIDE_YDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "aside.h"

/* A document being read, and where its errors go. */
typedef struct ydoc {
    const char     *name;       /* the file's name, first in every message */
    const char     *error_code; /* err->code set with every report ("bad_spec") */
    aside_error    *err;        /* may be NULL */
    bool            failed;     /* a report was made */
    bool            loaded;     /* doc holds a document: ydoc_close frees it */
    yaml_document_t doc;
} ydoc;

/* ---- loading ---------------------------------------------------------------------------- */

/* How deep mappings and sequences may nest in a document: far more than any schema needs. */
#define YDOC_MAX_DEPTH 64

/* Parse text (len bytes), which must hold exactly one YAML document with content. false when
 * reported: "invalid YAML: ..." at the problem, "nested more than 64 levels deep" at the first
 * level too deep, empty_message when there is no content, or second_message at a second
 * document. Aliases are followed by libyaml (they share nodes). */
bool ydoc_load(ydoc *r, const char *text, size_t len, const char *empty_message,
               const char *second_message);
/* The root node of a loaded document. */
yaml_node_t *ydoc_root(ydoc *r);
/* Free the document, if loaded. */
void ydoc_close(ydoc *r);

/* ---- reporting -------------------------------------------------------------------------- */

/* Report "name:line:column: message" at mark, with ASIDE_ERR_INVALID and r->error_code. */
void ydoc_fail(ydoc *r, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define YDOC_FAIL(r, node, ...) ydoc_fail((r), (node)->start_mark, __VA_ARGS__)

/* The line (from 1) where node starts. */
int ydoc_line(const yaml_node_t *node);
/* The node of index (a key, a value, an item). */
yaml_node_t *ydoc_node(ydoc *r, int index);

/* ---- scalars: each reports a mapping, a list or null where a value is wanted ----------- */

/* True for YAML's null: an empty plain scalar, "~" or "null". */
bool        ydoc_is_null(const yaml_node_t *node);
/* The text of a scalar field; NULL (reported) for a mapping, a sequence, null or a NUL. */
const char *ydoc_scalar(ydoc *r, const yaml_node_t *node, const char *field);
/* A malloc'd copy of a scalar field's text into *out. */
bool ydoc_text(ydoc *r, const yaml_node_t *node, const char *field, char **out);
/* true/yes/on or false/no/off, any case. */
bool ydoc_bool(ydoc *r, const yaml_node_t *node, const char *field, bool *out);
/* A decimal whole number in [min, max]. */
bool ydoc_int(ydoc *r, const yaml_node_t *node, const char *field, long min, long max,
              long *out);
/* A duration: a whole number of seconds, or one with a unit (500ms, 30s, 15m, 1h, 2d), at
 * most YDOC_MAX_DURATION_MS; 0 stays 0. */
bool ydoc_duration(ydoc *r, const yaml_node_t *node, const char *field, uint64_t *out_ms);
/* One of the NULL-terminated allowed words: *out points at the allowed entry. */
bool ydoc_choice(ydoc *r, const yaml_node_t *node, const char *field,
                 const char *const *allowed, const char **out);
/* ydoc_choice, *out (freed first) receiving a malloc'd copy. */
bool ydoc_choice_copy(ydoc *r, const yaml_node_t *node, const char *field,
                      const char *const *allowed, char **out);

/* The longest duration: a year and a day, in milliseconds. */
#define YDOC_MAX_DURATION_MS (366ULL * 86400 * 1000)

/* ---- mappings and sequences ------------------------------------------------------------- */

/* node is a mapping, else reported ("what must be a mapping"). */
bool ydoc_mapping(ydoc *r, const yaml_node_t *node, const char *what);
/* Sort the fields of mapping map into values[i] for known[i] (a NULL-terminated list of at
 * most YDOC_MAX_FIELDS names; values[i] NULL when absent): every key must be a known field,
 * given once. */
bool ydoc_fields(ydoc *r, const yaml_node_t *map, const char *what, const char *const *known,
                 yaml_node_t **values);
enum { YDOC_MAX_FIELDS = 16 };

/* node is a sequence, else reported ("what must be a list"). */
bool ydoc_sequence(ydoc *r, const yaml_node_t *node, const char *what);
/* Items in the sequence list. */
size_t ydoc_item_count(const yaml_node_t *list);
/* A zeroed array of one element of size bytes per item of list (at least one element);
 * NULL reported as out of memory. */
void *ydoc_array(ydoc *r, const yaml_node_t *list, size_t size);

/* Reads item number i of a sequence into the caller's array (ctx). */
typedef bool (*ydoc_item_reader)(ydoc *r, const yaml_node_t *item, size_t i, void *ctx);
/* Read every item of the sequence list in order with read, counting in *count each item begun
 * before reading it (so the caller frees a half-read item with the rest). Stops at the first
 * false. */
bool ydoc_each(ydoc *r, const yaml_node_t *list, size_t *count, ydoc_item_reader read,
               void *ctx);

#endif
