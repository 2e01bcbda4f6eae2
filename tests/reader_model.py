"""The model readers are checked against: io.BytesIO with the product's seek rules, and one way
to apply a generated operation to either side."""

import io


class ClampedBytesIO(io.BytesIO):
    """io.BytesIO whose seeks clamp to the size and refuse negative targets, like S3Reader."""

    def seek(self, offset, whence=io.SEEK_SET):
        size = len(self.getbuffer())
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.tell(), io.SEEK_END: size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        return super().seek(min(base + offset, size))


def apply_operation(target, op):
    """Runs ("read", n) / ("read()",) / ("read1", n) / ("readinto", n) / ("readinto1", n) /
    ("seek", offset, whence) / ("tell",)."""
    kind = op[0]
    if kind == "read":
        return target.read(op[1])
    if kind == "read()":
        return target.read()
    if kind == "read1":
        return target.read1(op[1])
    if kind in ("readinto", "readinto1"):
        buf = bytearray(op[1])
        n = getattr(target, kind)(buf)
        return n, bytes(buf[:n])
    if kind == "seek":
        return target.seek(op[1], op[2])
    return target.tell()
