/* ipc_format.h -- the parts of Arrow's IPC format the reader and writer share.
 *
 * Private to the arrow module. Field numbers are positions in the table declarations of
 * Arrow's Schema.fbs, Message.fbs and File.fbs (a union field takes two: its type, then its
 * value); enum values are those files' enum values. */
#ifndef ASIDE_ARROW_IPC_FORMAT_H
#define ASIDE_ARROW_IPC_FORMAT_H

/* Encapsulated messages: a continuation marker, an int32 metadata length, the Message
 * flatbuffer padded to IPC_ALIGN, then the body. A zero length ends the stream. */
#define IPC_CONTINUATION 0xFFFFFFFFu
#define IPC_PREFIX_BYTES 8 /* continuation marker and length */
#define IPC_LENGTH_BYTES 4
#define IPC_ALIGN        8

/* A file: IPC_MAGIC padded to IPC_MAGIC_PADDED bytes, a stream, the Footer flatbuffer, its
 * int32 length, IPC_MAGIC again. */
#define IPC_MAGIC        "ARROW1"
#define IPC_MAGIC_BYTES  6
#define IPC_MAGIC_PADDED 8

/* Tables and their fields. */
enum { MESSAGE_VERSION = 0, MESSAGE_HEADER_TYPE, MESSAGE_HEADER, MESSAGE_BODY_LENGTH,
       MESSAGE_CUSTOM_METADATA };
enum { SCHEMA_ENDIANNESS = 0, SCHEMA_FIELDS, SCHEMA_CUSTOM_METADATA, SCHEMA_FEATURES };
enum { FIELD_NAME = 0, FIELD_NULLABLE, FIELD_TYPE_TYPE, FIELD_TYPE, FIELD_DICTIONARY,
       FIELD_CHILDREN, FIELD_CUSTOM_METADATA };
enum { KEY_VALUE_KEY = 0, KEY_VALUE_VALUE };
enum { DICT_ENCODING_ID = 0, DICT_ENCODING_INDEX_TYPE, DICT_ENCODING_IS_ORDERED,
       DICT_ENCODING_KIND };
enum { INT_BIT_WIDTH = 0, INT_IS_SIGNED };
enum { FLOATING_POINT_PRECISION = 0 };
enum { DECIMAL_PRECISION = 0, DECIMAL_SCALE, DECIMAL_BIT_WIDTH };
enum { DATE_UNIT = 0 };
enum { TIMESTAMP_UNIT = 0, TIMESTAMP_TIMEZONE };
enum { RECORD_BATCH_LENGTH = 0, RECORD_BATCH_NODES, RECORD_BATCH_BUFFERS,
       RECORD_BATCH_COMPRESSION, RECORD_BATCH_VARIADIC_COUNTS };
enum { DICT_BATCH_ID = 0, DICT_BATCH_DATA, DICT_BATCH_IS_DELTA };
enum { COMPRESSION_CODEC = 0, COMPRESSION_METHOD };
enum { FOOTER_VERSION = 0, FOOTER_SCHEMA, FOOTER_DICTIONARIES, FOOTER_RECORD_BATCHES,
       FOOTER_CUSTOM_METADATA };

/* Structs: byte offsets of their members, and sizes. */
enum { FIELD_NODE_LENGTH = 0, FIELD_NODE_NULL_COUNT = 8, FIELD_NODE_BYTES = 16 };
enum { BUFFER_OFFSET = 0, BUFFER_LENGTH = 8, BUFFER_BYTES = 16 };
enum { BLOCK_OFFSET = 0, BLOCK_METADATA_LENGTH = 8, BLOCK_BODY_LENGTH = 16, BLOCK_BYTES = 24 };
/* Structs made of int64s are aligned to 8. */
#define IPC_STRUCT_ALIGN 8

/* Enums. */
enum { METADATA_V4 = 3, METADATA_V5 = 4 };
enum { HEADER_NONE = 0, HEADER_SCHEMA, HEADER_DICTIONARY_BATCH, HEADER_RECORD_BATCH,
       HEADER_TENSOR, HEADER_SPARSE_TENSOR };
enum { ENDIANNESS_LITTLE = 0 };
enum { TYPE_NONE = 0, TYPE_NULL, TYPE_INT, TYPE_FLOATING_POINT, TYPE_BINARY, TYPE_UTF8,
       TYPE_BOOL, TYPE_DECIMAL, TYPE_DATE, TYPE_TIME, TYPE_TIMESTAMP, TYPE_INTERVAL,
       TYPE_LIST, TYPE_STRUCT, TYPE_UNION, TYPE_FIXED_SIZE_BINARY, TYPE_FIXED_SIZE_LIST,
       TYPE_MAP, TYPE_DURATION, TYPE_LARGE_BINARY, TYPE_LARGE_UTF8, TYPE_LARGE_LIST,
       TYPE_RUN_END_ENCODED, TYPE_BINARY_VIEW, TYPE_UTF8_VIEW, TYPE_LIST_VIEW,
       TYPE_LARGE_LIST_VIEW };
enum { PRECISION_HALF = 0, PRECISION_SINGLE, PRECISION_DOUBLE };
enum { DATE_UNIT_DAY = 0, DATE_UNIT_MILLISECOND };
enum { TIME_UNIT_SECOND = 0, TIME_UNIT_MILLISECOND, TIME_UNIT_MICROSECOND,
       TIME_UNIT_NANOSECOND };
enum { CODEC_LZ4_FRAME = 0, CODEC_ZSTD };
enum { COMPRESSION_METHOD_BUFFER = 0 };

/* Arrow's Decimal default bit width, and the only one frames hold. */
#define IPC_DECIMAL_BIT_WIDTH 128
/* Each compressed buffer starts with its uncompressed length (int64); this value in it means
 * the buffer is stored uncompressed. */
#define IPC_UNCOMPRESSED_LENGTH_BYTES 8
#define IPC_NOT_COMPRESSED (-1)

#endif
