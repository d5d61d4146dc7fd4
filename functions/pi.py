"""pi -- the digits of pi, computed exactly (Machin's formula with integers)."""

from aside import lru_cache

MAX_DIGITS = 10000  # a few tens of milliseconds; more is refused rather than run for long
GUARD_DIGITS = 10   # extra digits computed so that rounding errors stay out of the answer
CHUNK_DIGITS = 1000  # str() of an int is limited to 4300 digits: convert in chunks


def _arctan_inverse(x, unity):
    """arctan(1/x) * unity, in integers (the Taylor series, to the last unit)."""
    total = term = unity // x
    x_squared = x * x
    n = 1
    sign = -1
    while term:
        term //= x_squared
        total += sign * (term // (2 * n + 1))
        sign = -sign
        n += 1
    return total


def _decimal_text(n):
    """The decimal digits of a non-negative integer of any size."""
    chunk = 10 ** CHUNK_DIGITS
    parts = []
    while n >= chunk:
        n, rest = divmod(n, chunk)
        parts.append(rest)
    return str(n) + "".join(f"{p:0{CHUNK_DIGITS}d}" for p in reversed(parts))


@lru_cache(maxsize=32)
def digits(significant_digits):
    """Pi to this many significant digits, as a string: digits(5) == "3.1415"."""
    unity = 10 ** (significant_digits - 1 + GUARD_DIGITS)
    pi = 4 * (4 * _arctan_inverse(5, unity) - _arctan_inverse(239, unity))
    text = _decimal_text(pi // 10 ** GUARD_DIGITS)
    return text[0] + ("." + text[1:] if len(text) > 1 else "")


def main(cache, significant_digits):
    """Pi to `significant_digits` significant digits (1 to 10000), as a string."""
    n = int(significant_digits)
    if not 1 <= n <= MAX_DIGITS:
        raise ValueError(f"significant_digits must be between 1 and {MAX_DIGITS}, not {n}")
    return digits(n)
