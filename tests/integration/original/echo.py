"""echo -- answers the message it is given, in the style of the original project's functions:
everything arrives in **kwargs."""


def main(cache, **kwargs):
    return kwargs.get("message")
