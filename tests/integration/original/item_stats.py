"""item_stats -- what is known of one cached item: for a frame, the text of df.info(); for a
JSON document, its keys. The item is looked up in the cache as in a dict. (The original's
file of this kind is named stats_cache_item, which in aside is the server's own function,
`info`: a user's function may not take its name.)"""
import io


def main(cache, **kwargs):
    key = kwargs.get("key")
    if key not in cache.keys():
        return {"result": f"cache key {key} not found"}
    item = cache[key]
    if key.endswith(".json"):
        return item.keys()
    text = io.StringIO()
    item.info(buf=text)
    return text.getvalue()
