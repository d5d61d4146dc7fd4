"""percent_format -- old-style string formatting, whose source holds literal % signs."""


def main(cache, **kwargs):
    share = float(kwargs.get("share", 0.5))
    return "%d%% of %s" % (round(share * 100), kwargs.get("of", "it"))
