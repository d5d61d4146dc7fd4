"""query -- echoes its parameters, as the original project's example did."""


def main(cache, q, w=-1):
    """Return the query `q` and the weight `w` (default -1) as they arrived."""
    return {"q": q, "w": w}
