"""Independent references for the text tests, written without the code under test."""

import functools


def reference_edit_distance(a, b):
    """Levenshtein distance by the plain recursion over suffixes (memoised)."""
    a, b = tuple(a), tuple(b)

    @functools.lru_cache(maxsize=None)
    def d(i, j):  # distance between the suffixes a[i:] and b[j:]
        if i == len(a) or j == len(b):
            return (len(a) - i) + (len(b) - j)
        if a[i] == b[j]:
            return d(i + 1, j + 1)
        return 1 + min(d(i + 1, j), d(i, j + 1), d(i + 1, j + 1))

    return d(0, 0)
