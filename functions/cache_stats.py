"""cache_stats -- what the cache holds."""


def main(cache):
    """The number of cached keys and their names."""
    keys = cache.keys()
    return {"count": len(keys), "keys": keys}
