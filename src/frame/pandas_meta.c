/* pandas_meta.c -- the "pandas" metadata of a file, parsed once for every reader.
 *
 * The rules follow what pyarrow does when it turns a table back into a DataFrame
 * (pandas_compat.py):
 *   - A column's extension dtype is its numpy_type when pandas_dtype(numpy_type) is an
 *     extension dtype that can be built from Arrow data. Of those, frames hold the nullable
 *     ones, listed in EXTENSION_DTYPES with the name pandas shows them by ("string[pyarrow]"
 *     is shown as "string"); numpy's own names ("int64", "datetime64[ns]") are not extensions,
 *     and a name pandas does not know would make pandas fail, so it is ignored here. A
 *     categorical's numpy_type is its codes' dtype, never an extension.
 *   - The index is a RangeIndex only when index_columns holds exactly one descriptor of kind
 *     "range" (more descriptors make a MultiIndex, and a stored index column stays a column
 *     of the frame). start and step must be integers. A step of 0 is invalid in pandas
 *     (RangeIndex raises "Step must not be zero"): such a descriptor is ignored like any other
 *     malformed part, so the frame gets the default RangeIndex(0, rows, 1) and no name.
 * Untrusted input: the JSON comes from a file; every member is checked for its type before it
 * is used, and anything of another shape is left out. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "pandas_meta.h"

/* numpy_type as pyarrow writes it, and the dtype pandas shows for it. */
static const struct {
    const char *numpy_type, *dtype;
} EXTENSION_DTYPES[] = {
    {"Int8", "Int8"},       {"Int16", "Int16"},     {"Int32", "Int32"},
    {"Int64", "Int64"},     {"UInt8", "UInt8"},     {"UInt16", "UInt16"},
    {"UInt32", "UInt32"},   {"UInt64", "UInt64"},   {"Float32", "Float32"},
    {"Float64", "Float64"}, {"boolean", "boolean"}, {"string", "string"},
    {"string[python]", "string"}, {"string[pyarrow]", "string"},
};

const char *pandas_meta_extension_dtype(const char *numpy_type)
{
    for (size_t i = 0; i < sizeof EXTENSION_DTYPES / sizeof *EXTENSION_DTYPES; i++) {
        if (strcmp(numpy_type, EXTENSION_DTYPES[i].numpy_type) == 0)
            return EXTENSION_DTYPES[i].dtype;
    }
    return NULL;
}

void pandas_meta_free(pandas_meta *m)
{
    for (size_t i = 0; m->columns && i < m->column_count; i++) {
        free(m->columns[i].name);
        free(m->columns[i].timezone);
    }
    free(m->columns);
    free(m->range_index.name);
    memset(m, 0, sizeof *m);
}

static const char *member_string(json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

/* The unit in a numpy datetime dtype ("datetime64[ns]", "datetime64[ns, UTC]"); false if none. */
static bool parse_unit(const char *numpy_type, frame_unit *unit)
{
    static const char *const names[] = {"[s", "[ms", "[us", "[ns"};
    for (int i = FRAME_NANO; i >= FRAME_SECOND; i--) {
        if (strstr(numpy_type, names[i])) {
            *unit = (frame_unit)i;
            return true;
        }
    }
    return false;
}

/* One entry of "columns" into c; false when out of memory (c holds what it got, to free). A
 * column without field_name or numpy_type leaves c untouched. */
static bool read_column(json_t *column, pandas_meta_column *c)
{
    const char *name = member_string(column, "field_name");
    const char *pandas_type = member_string(column, "pandas_type");
    const char *numpy_type = member_string(column, "numpy_type");
    json_t *meta = json_object_get(column, "metadata");
    if (!name || !numpy_type)
        return true;
    if (!(c->name = strdup(name)))
        return false;
    c->extension_dtype = pandas_meta_extension_dtype(numpy_type);
    if (pandas_type && strcmp(pandas_type, "categorical") == 0) {
        c->category = true;
        c->ordered = json_is_true(json_object_get(meta, "ordered"));
    } else if (pandas_type && (strcmp(pandas_type, "datetimetz") == 0 ||
                               strcmp(pandas_type, "datetime") == 0)) {
        c->timestamp = parse_unit(numpy_type, &c->unit);
        const char *tz = member_string(meta, "timezone");
        if (c->timestamp && tz && !(c->timezone = strdup(tz)))
            return false;
    }
    return true;
}

static bool read_columns(json_t *root, pandas_meta *m)
{
    json_t *columns = json_object_get(root, "columns");
    size_t n = json_array_size(columns);
    if (n == 0)
        return true;
    if (!(m->columns = calloc(n, sizeof *m->columns)))
        return false;
    for (size_t i = 0; i < n; i++) {
        pandas_meta_column *c = &m->columns[m->column_count];
        bool ok = read_column(json_array_get(columns, i), c);
        if (c->name) /* a column without field_name or numpy_type is left out */
            m->column_count++;
        if (!ok)
            return false;
    }
    return true;
}

/* The sole "range" index descriptor; false when out of memory. */
static bool read_range_index(json_t *root, pandas_meta *m)
{
    json_t *columns = json_object_get(root, "index_columns");
    json_t *range = json_array_size(columns) == 1 ? json_array_get(columns, 0) : NULL;
    const char *kind = member_string(range, "kind");
    json_t *start = json_object_get(range, "start"), *step = json_object_get(range, "step");
    if (!kind || strcmp(kind, "range") != 0 || !json_is_integer(start) ||
        !json_is_integer(step) || json_integer_value(step) == 0)
        return true;
    const char *name = member_string(range, "name");
    if (name && !(m->range_index.name = strdup(name)))
        return false;
    m->range_index.start = json_integer_value(start);
    m->range_index.step = json_integer_value(step);
    m->has_range_index = true;
    return true;
}

aside_status pandas_meta_parse(const char *json, pandas_meta *out, aside_error *err)
{
    memset(out, 0, sizeof *out);
    out->range_index.step = 1;
    json_t *root = json_loads(json, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return ASIDE_OK;
    }
    bool ok = read_columns(root, out) && read_range_index(root, out);
    json_decref(root);
    return ok ? ASIDE_OK : error_set(err, ASIDE_ERR_NOMEM, "out of memory");
}

aside_status pandas_meta_apply_dtypes(const pandas_meta *m, frame_field *fields, size_t count,
                                      aside_error *err)
{
    for (size_t i = 0; i < m->column_count; i++) {
        const pandas_meta_column *c = &m->columns[i];
        for (size_t j = 0; c->extension_dtype && j < count; j++) {
            if (fields[j].pandas_dtype || strcmp(fields[j].name, c->name) != 0)
                continue;
            if (!(fields[j].pandas_dtype = strdup(c->extension_dtype)))
                return error_set(err, ASIDE_ERR_NOMEM, "out of memory");
        }
    }
    return ASIDE_OK;
}
