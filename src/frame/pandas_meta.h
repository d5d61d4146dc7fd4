/* pandas_meta.h -- the "pandas" metadata a file written by pandas carries, read once.
 *
 * pyarrow stores a DataFrame's pandas facts next to its Arrow schema as JSON (the schema's
 * custom metadata "pandas" in Arrow IPC files, the key-value metadata "pandas" in parquet):
 * per column its stored field name, pandas_type, numpy_type and type metadata, and the index.
 * Every reader of files (the Arrow IPC decoder, the DuckDB loader of parquet) reads it through
 * this one parser, so both take the same facts from the same file:
 *   - the extension dtype a column had (numpy_type "Int64", "boolean", "string", ...);
 *   - for categoricals, whether they are ordered; for datetimes, the unit and time zone;
 *   - a RangeIndex (start, step, name), when it is the frame's only index.
 * Metadata that is not JSON, or parts of it that do not have the expected shape, are left out:
 * pandas reads the data without them too. Only running out of memory is an error. */
#ifndef ASIDE_PANDAS_META_H
#define ASIDE_PANDAS_META_H

#include <stdbool.h>
#include <stddef.h>

#include "aside.h"
#include "frame/frame.h"

/* What the metadata says of one column. */
typedef struct pandas_meta_column {
    char       *name;            /* the field the column is stored in (field_name) */
    bool        category;        /* pandas_type "categorical" */
    bool        ordered;         /* category: its categories are ordered */
    bool        timestamp;       /* pandas_type "datetime" or "datetimetz", with a unit */
    frame_unit  unit;            /* timestamp: from numpy_type ("datetime64[ns]") */
    char       *timezone;        /* timestamp: the zone, NULL when naive */
    const char *extension_dtype; /* the pandas extension dtype ("Int64"), a static string; NULL
                                    when the column's dtype follows from its data */
} pandas_meta_column;

typedef struct pandas_meta {
    pandas_meta_column *columns;
    size_t              column_count;
    bool                has_range_index;
    frame_index         range_index; /* has_range_index: start, step (never 0), name (owned) */
} pandas_meta;

/* Parse json (NUL-terminated) into *out, which the caller frees with pandas_meta_free() in
 * every case. ASIDE_OK, also for metadata that does not parse (then *out is empty);
 * ASIDE_ERR_NOMEM with err set when out of memory. */
aside_status pandas_meta_parse(const char *json, pandas_meta *out, aside_error *err);
void         pandas_meta_free(pandas_meta *m);

/* The pandas extension dtype pyarrow makes of numpy_type when it rebuilds a DataFrame (a static
 * string: "Int64", "string", ...), or NULL when the name is a numpy dtype or one frames do not
 * hold as an extension. */
const char *pandas_meta_extension_dtype(const char *numpy_type);

/* Give each of fields (count) the extension dtype the metadata names for it, unless it has one
 * already. ASIDE_ERR_NOMEM with err set when out of memory. */
aside_status pandas_meta_apply_dtypes(const pandas_meta *m, frame_field *fields, size_t count,
                                      aside_error *err);

#endif
