"""An MSB-first bit reader for the header syntax of coded video (ITU-T H.265 and AV1 descriptors)."""
from __future__ import annotations


class BitReader:
    """Reads ``u(n)`` fixed-width fields and (H.26x) Exp-Golomb codes from a byte string, most significant bit
    first; a ValueError when the syntax runs past the end of the data."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        """An unsigned n-bit field (0 bits read 0)."""
        if self.pos + n > 8 * len(self.data):
            raise ValueError("header syntax runs past the end of its data")
        value = 0
        for _ in range(n):
            value = (value << 1) | (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
            self.pos += 1
        return value

    def ue(self) -> int:
        """An unsigned Exp-Golomb code, ``ue(v)``."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("malformed Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """A signed Exp-Golomb code, ``se(v)``."""
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)
