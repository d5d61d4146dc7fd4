/* fuzz_arrow.c -- the Arrow IPC reader (arrow_decode, arrow_decode_schema; arrow_read.c).
 *
 * Arrow files and streams come from the system of record, from `put` and `write` bodies and
 * from users' functions: untrusted bytes that become frames. The input is a file or stream.
 * A frame that decodes must be whole: encoding it as JSON and CSV reads every cell, and its
 * Arrow encoding must decode again to a frame of the same shape. */
#include "arrow/arrow.h"
#include "frame/frame.h"
#include "fuzz.h"

/* Encode f as an Arrow stream and decode that again: same rows and columns. */
static void round_trip(frame *f)
{
    arrow_encoding enc;
    aside_error err;
    if (arrow_encode(f, ARROW_STREAM, true, &enc, &err) != ASIDE_OK)
        return;
    uint8_t *bytes = malloc(enc.total_bytes ? enc.total_bytes : 1);
    size_t at = 0;
    for (size_t i = 0; bytes && i < enc.count; i++) {
        memcpy(bytes + at, enc.segments[i].data, enc.segments[i].length);
        at += enc.segments[i].length;
    }
    frame *again = NULL;
    if (bytes && arrow_decode(bytes, at, &again, &err) != ASIDE_OK) {
        fprintf(stderr, "fuzz: our own encoding does not decode: %s\n", err.message);
        abort();
    }
    if (again && (again->rows != f->rows || again->field_count != f->field_count))
        abort();
    frame_release(again);
    free(bytes);
    arrow_encoding_free(&enc);
}

static void schema(const uint8_t *data, size_t size)
{
    frame_field *fields = NULL;
    size_t count = 0;
    char *pandas = NULL;
    aside_error err;
    if (arrow_decode_schema(data, size, &fields, &count, &pandas, &err) != ASIDE_OK)
        return;
    for (size_t i = 0; i < count; i++)
        frame_field_clear(&fields[i]);
    free(fields);
    free(pandas);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    schema(data, size);
    frame *f = NULL;
    aside_error err;
    if (arrow_decode(data, size, &f, &err) != ASIDE_OK)
        return 0;
    buf out;
    buf_init(&out);
    frame_encode_json(f, "split", &out, &err);
    buf_reset(&out);
    frame_encode_csv(f, &out, &err);
    buf_reset(&out);
    frame_pandas_info(f, &out);
    buf_free(&out);
    round_trip(f);
    frame_release(f);
    return 0;
}
