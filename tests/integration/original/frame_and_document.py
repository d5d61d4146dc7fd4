"""frame_and_document -- reads a frame and a JSON document through cache[key] in one call and
answers facts of both: the frame's shape and the rows whose column `column` holds one of the
document's values for `field`."""
import io


def main(cache, **kwargs):
    frame = cache[kwargs["frame"]]
    document = cache[kwargs["document"]]
    wanted = document[kwargs["field"]]
    chosen = frame[frame[kwargs["column"]].isin(wanted)]
    info = io.StringIO()
    chosen.info(buf=info)
    return {
        "rows": int(frame.shape[0]),
        "columns": list(frame.columns),
        "chosen": int(len(chosen)),
        "info_lines": len(info.getvalue().splitlines()),
    }
