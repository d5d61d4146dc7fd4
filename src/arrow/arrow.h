/* arrow.h -- the Arrow IPC format (streams and files) for frames.
 *
 * Out: a frame's batch bodies are already laid out as Arrow IPC record batch bodies (frame.h),
 * so encoding writes only the metadata: the Schema message, one DictionaryBatch per categorical
 * field, a RecordBatch header per batch, the end-of-stream marker and, for the file format,
 * the footer. An encoding is a list of segments, in order: metadata segments point into memory
 * the encoding owns, body segments into the frame, which the encoding keeps a reference to. A
 * server sends the segments with writev; nothing is copied.
 *
 * In: an Arrow IPC file or stream in memory (a Feather v2 file is an Arrow IPC file), with
 * uncompressed, LZ4-frame or ZSTD compressed bodies, becomes a frame through frame_builder.
 * Parquet files written by pyarrow carry their Arrow schema as a serialized Schema message
 * (metadata "ARROW:schema"); arrow_decode_schema reads it, so a loader knows the exact types
 * (time zones, units, categoricals) the writer had.
 *
 * The metadata is FlatBuffers (Arrow's Schema.fbs, Message.fbs, File.fbs), written and read by
 * the small builder and reader in flatbuf.c; no code is generated. */
#ifndef ASIDE_ARROW_H
#define ASIDE_ARROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aside.h"
#include "frame/frame.h"

/* Media types. */
#define ARROW_STREAM_MEDIA_TYPE "application/vnd.apache.arrow.stream"
#define ARROW_FILE_MEDIA_TYPE   "application/vnd.apache.arrow.file"

typedef struct arrow_segment {
    const void *data;
    size_t      length;
} arrow_segment;

/* An encoded frame: the concatenation of segments[0 .. count) is the stream or file. */
typedef struct arrow_encoding {
    arrow_segment *segments;
    size_t         count;
    uint64_t       total_bytes;
    frame         *frame;    /* retained; the body segments point into it */
    uint8_t       *metadata; /* owned; the metadata segments point into it */
} arrow_encoding;

typedef enum arrow_format { ARROW_STREAM = 0, ARROW_FILE } arrow_format;

/* Encode f as an Arrow IPC stream or file. With pandas_metadata, the frame's pandas metadata
 * (if any) goes into the schema's custom metadata under "pandas", so pyarrow rebuilds the
 * DataFrame's index and extension dtypes. Strings keep the width their source gave them
 * (frame_field.large_strings): large_string columns and categories are written with int64
 * offsets, widened after each body as arrow_encode_large does. On success fills *out; free it
 * with arrow_encoding_free(). */
aside_status arrow_encode(frame *f, arrow_format format, bool pandas_metadata,
                          arrow_encoding *out, aside_error *err);
/* As arrow_encode, with string and bytes columns as Arrow's large_string and large_binary
 * (int64 offsets, pandas 3's own string layout): each record batch body is the frame's body,
 * byte for byte, then the widened offsets (8 bytes per row and string column, owned by the
 * encoding), which the batch's offsets buffers point at. A categorical's categories keep their
 * own width. Each string and bytes field's custom metadata "aside:width" names its own type
 * ("string", "large_string", "binary", "large_binary"), so a reader can narrow back a column
 * widened only for this encoding. */
aside_status arrow_encode_large(frame *f, arrow_format format, bool pandas_metadata,
                                arrow_encoding *out, aside_error *err);
void         arrow_encoding_free(arrow_encoding *enc);

/* Decode an Arrow IPC file or stream (told apart by the file magic) of size bytes into a new
 * frame (reference count 1). ASIDE_ERR_BAD_VALUE with the reason for malformed input or a type
 * frames do not hold; never reads outside data. The pandas metadata, if present, is kept. */
aside_status arrow_decode(const void *data, size_t size, frame **out, aside_error *err);

/* Decode a serialized Schema message (an IPC message with its continuation marker and length
 * prefix, or the bare flatbuffer) into fields. Dictionaries are not set (the schema has none).
 * The caller frees each field with frame_field_clear() and the array with free(); *pandas
 * (may be NULL) receives the "pandas" custom metadata, malloc'd, or NULL. */
aside_status arrow_decode_schema(const void *data, size_t size, frame_field **fields,
                                 size_t *count, char **pandas, aside_error *err);

#endif
