"""random_number -- a random integer in a closed range."""

import random


def main(cache, start, stop):
    """A random integer N with start <= N <= stop."""
    return random.randint(int(start), int(stop))
