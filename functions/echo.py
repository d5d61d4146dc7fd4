"""echo -- the smallest function: answers its message."""


def main(cache, message):
    """Return the message as it was sent."""
    return message
