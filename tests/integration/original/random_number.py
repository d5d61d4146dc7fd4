"""random_number -- a whole number between start and stop, both included."""
import random


def main(cache, **kwargs):
    start = int(kwargs.get("start", 0))
    stop = int(kwargs.get("stop", 100))
    return random.randint(start, stop)
