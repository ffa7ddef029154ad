"""The bpf(2) system call for lifecycle_capture's kernel matching (capture_kernel.py): maps
(create, look up, delete a batch), loading a program, and the eBPF instruction encoding
(linux/bpf.h) with labels, so a program is written as a list of readable instructions.

Called through ctypes (libc's syscall()), with no compiler, no headers and no library: the
program is assembled here, the kernel's verifier checks it. Every failure is an OSError
with the kernel's errno (and, for a refused program, the verifier's last lines), which the
caller turns into one warning and the user-space capture. Owns the encoding and the system
calls; knows nothing of TCP, of connections or of the event loop.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import sys
from typing import Any

# syscall numbers of bpf(2) where webserv knows them; elsewhere: no kernel matching
_NR = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "ppc64": 361, "s390x": 351}
NR = _NR.get(os.uname().machine) if sys.platform.startswith("linux") else None

MAP_CREATE, MAP_LOOKUP_ELEM, MAP_DELETE_ELEM, PROG_LOAD, MAP_DELETE_BATCH = 0, 1, 3, 5, 27
MAP_HASH, MAP_ARRAY, MAP_LRU_HASH, MAP_RINGBUF = 1, 2, 9, 27
F_MMAPABLE = 1 << 10
PROG_SOCKET_FILTER = 1
SO_ATTACH_BPF = 50  # asm-generic (capture.py's _GENERIC refuses the other architectures)
ANY, NOEXIST = 0, 1  # map_update_elem flags

# --- instructions (struct bpf_insn {u8 code; u8 dst:4, src:4; s16 off; s32 imm;}) --------
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
IMM, ABS, IND, MEM, ATOMIC = 0x00, 0x20, 0x40, 0x60, 0xC0
ADD, SUB, MUL, OR, AND, LSH, RSH, MOV, END = 0x00, 0x10, 0x20, 0x40, 0x50, 0x60, 0x70, 0xB0, 0xD0
K, X = 0x00, 0x08
JA, JEQ, JGT, JGE, JSET, JNE, JSLT, CALL, EXIT = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0xC0, 0x80, 0x90,
)  # fmt: skip
FETCH = 0x01
PSEUDO_MAP_FD, PSEUDO_MAP_VALUE = 1, 2
# helpers
LOOKUP, UPDATE, DELETE, KTIME_GET_NS, RINGBUF_OUTPUT = 1, 2, 3, 5, 130
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, FP = range(11)

_INSN = struct.Struct("<BBhi")
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")


class Asm:
    """A program being written: instructions and labels; `code()` resolves the jumps."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def label(self, name: str) -> None:
        self.items.append(name)

    def op(self, code: int, dst: int = 0, src: int = 0, off: int | str = 0, imm: int = 0) -> None:
        self.items.append((code, dst, src, off, imm))

    # the instructions this project uses, by what they do
    def mov(self, dst: int, imm: int) -> None:
        self.op(ALU64 | MOV | K, dst, imm=imm)

    def movr(self, dst: int, src: int) -> None:
        self.op(ALU64 | MOV | X, dst, src)

    def alu(self, operation: int, dst: int, imm: int, wide: bool = True) -> None:
        self.op((ALU64 if wide else ALU) | operation | K, dst, imm=imm)

    def alur(self, operation: int, dst: int, src: int, wide: bool = True) -> None:
        self.op((ALU64 if wide else ALU) | operation | X, dst, src)

    def be(self, dst: int, bits: int) -> None:
        """Host to network order (a byte swap on a little-endian machine)."""
        self.op(ALU | END | X, dst, imm=bits)  # (BPF_TO_BE is the X bit)

    def load(self, size: int, dst: int, src: int, off: int) -> None:
        self.op(LDX | MEM | size, dst, src, off)

    def store(self, size: int, dst: int, off: int, src: int) -> None:
        self.op(STX | MEM | size, dst, src, off)

    def store_imm(self, size: int, dst: int, off: int, imm: int) -> None:
        self.op(ST | MEM | size, dst, 0, off, imm)

    def packet(self, size: int, off: int, index: int | None = None) -> None:
        """R0 = the packet's bytes at `off` (+ register `index`), in host order (LD_ABS/IND:
        R6 is the packet; out of bounds ends the program with 0)."""
        if index is None:
            self.op(LD | ABS | size, imm=off)
        else:
            self.op(LD | IND | size, 0, index, imm=off)

    def jump(self, cond: int, dst: int, imm: int, to: str, wide: bool = True) -> None:
        self.op((JMP if wide else JMP32) | cond | K, dst, 0, to, imm)

    def jumpr(self, cond: int, dst: int, src: int, to: str, wide: bool = True) -> None:
        self.op((JMP if wide else JMP32) | cond | X, dst, src, to)

    def goto(self, to: str) -> None:
        self.op(JMP | JA, off=to)

    def call(self, helper: int) -> None:
        self.op(JMP | CALL, imm=helper)

    def exit(self) -> None:
        self.op(JMP | EXIT)

    def map_fd(self, dst: int, fd: int) -> None:
        self.items.append(("imm64", dst, PSEUDO_MAP_FD, fd, 0))

    def map_value(self, dst: int, fd: int, offset: int = 0) -> None:
        """dst = a pointer to an array map's first value + offset."""
        self.items.append(("imm64", dst, PSEUDO_MAP_VALUE, fd, offset))

    def atomic_add(self, size: int, dst: int, off: int, src: int, fetch: bool = False) -> None:
        self.op(STX | ATOMIC | size, dst, src, off, FETCH if fetch else 0)

    def code(self) -> bytes:
        where: dict[str, int] = {}
        n = 0
        for item in self.items:
            if isinstance(item, str):
                if item in where:
                    raise ValueError(f"label {item} twice")
                where[item] = n
            else:
                n += 2 if item[0] == "imm64" else 1
        out, pc = [], 0
        for item in self.items:
            if isinstance(item, str):
                continue
            if item[0] == "imm64":
                _, dst, src, low, high = item
                out.append(_INSN.pack(LD | IMM | DW, (src << 4) | dst, 0, low))
                out.append(_INSN.pack(0, 0, 0, high))
                pc += 2
                continue
            code, dst, src, off, imm = item
            if isinstance(off, str):
                off = where[off] - pc - 1
            out.append(_INSN.pack(code, (src << 4) | dst, off, imm))
            pc += 1
        return b"".join(out)


# --- the system call ----------------------------------------------------------------------

_libc: Any = None


def _call() -> Any:
    global _libc  # (the C library, loaded once per process: not per-generation state)
    if NR is None:
        raise OSError(38, "bpf() is not known on this system")
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        fn = lib.syscall
        fn.restype = ctypes.c_long
        fn.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_ulong]
        _libc = fn
    return _libc


def bpf(cmd: int, attr: Any) -> int:
    result = _call()(NR, cmd, attr, ctypes.sizeof(attr))
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def _attr(fmt: str, *values: Any, size: int = 128) -> Any:
    buf = ctypes.create_string_buffer(size)
    struct.pack_into(fmt, buf, 0, *values)
    return buf


def map_create(kind: int, key_size: int, value_size: int, entries: int, flags: int = 0) -> int:
    return bpf(MAP_CREATE, _attr("<IIIII", kind, key_size, value_size, entries, flags))


def prog_load(code: bytes, name: bytes = b"webserv_wire") -> int:
    """A socket filter program's fd; OSError with the verifier's last lines if refused."""
    insns = ctypes.create_string_buffer(code, len(code))
    license = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 16)
    attr = _attr(
        "<IIQQIIQII16s", PROG_SOCKET_FILTER, len(code) // 8, ctypes.addressof(insns),
        ctypes.addressof(license), 1, len(log), ctypes.addressof(log), 0, 0, name[:15],
    )  # fmt: skip
    try:
        return bpf(PROG_LOAD, attr)
    except OSError as exc:
        lines = log.value.decode("ascii", "replace").strip().splitlines()
        if lines and exc.errno not in (1, 13):  # (EPERM, EACCES: no CAP_BPF; no log)
            exc.strerror = f"{exc.strerror}; verifier: {' | '.join(lines[-3:])}"
        raise


class MapReader:
    """Look-ups and deletions on one map with buffers and arguments made once (the fast
    path: one system call per look-up, no allocation but the bytes returned). The calls go
    without argtypes, with ctypes values made here: measured, converting the arguments
    each time cost more than the system call (1.5 against 0.7 µs a look-up)."""

    def __init__(self, fd: int, key_size: int, value_size: int, batch: int = 256) -> None:
        _call()
        fn = ctypes.CDLL(None, use_errno=True).syscall
        fn.restype = ctypes.c_long
        self.syscall = fn
        self.nr = ctypes.c_long(NR or 0)
        self.fd = fd
        self.key_size = key_size
        self.key = ctypes.create_string_buffer(key_size)
        self.key_view = memoryview(self.key).cast("B")[:key_size]
        self.value = ctypes.create_string_buffer(value_size)
        lookup = _attr(
            "<IIQQQ", fd, 0, ctypes.addressof(self.key), ctypes.addressof(self.value), 0, size=32
        )
        delete = _attr("<IIQQQ", fd, 0, ctypes.addressof(self.key), 0, 0, size=32)
        self.batch = batch
        self.keys = ctypes.create_string_buffer(key_size * batch)
        batch_attr = _attr("<QQQQII", 0, 0, ctypes.addressof(self.keys), 0, 0, fd, size=56)
        self.attrs = (lookup, delete, batch_attr)  # (kept alive: the calls point into them)
        self.batch_attr = batch_attr
        self.lookup_args = (
            self.nr, ctypes.c_long(MAP_LOOKUP_ELEM), ctypes.c_void_p(ctypes.addressof(lookup)),
            ctypes.c_long(32),
        )  # fmt: skip
        self.delete_args = (
            self.nr, ctypes.c_long(MAP_DELETE_ELEM), ctypes.c_void_p(ctypes.addressof(delete)),
            ctypes.c_long(32),
        )  # fmt: skip
        self.batch_args = (
            self.nr, ctypes.c_long(MAP_DELETE_BATCH),
            ctypes.c_void_p(ctypes.addressof(batch_attr)), ctypes.c_long(56),
        )  # fmt: skip
        self.batch_ok = True  # BPF_MAP_DELETE_BATCH (Linux 5.6); else one call per key

    def lookup(self, key: bytes) -> bytes | None:
        """The value of `key` (exactly key_size bytes), None if the map has none."""
        self.key_view[:] = key
        if self.syscall(*self.lookup_args) < 0:
            return None
        return self.value.raw

    def delete(self, keys: list[bytes]) -> int:
        """Delete every key there is (a missing one is skipped); how many went."""
        gone, size = 0, self.key_size
        for start in range(0, len(keys), self.batch):
            chunk = keys[start : start + self.batch]
            if self.batch_ok:
                ctypes.memmove(self.keys, b"".join(chunk), len(chunk) * size)
                struct.pack_into("<I", self.batch_attr, 32, len(chunk))
                done = self.syscall(*self.batch_args)
                ran = struct.unpack_from("<I", self.batch_attr, 32)[0]
                if done == 0:
                    gone += ran
                    continue
                if ctypes.get_errno() in (22, 95, 524):  # EINVAL, EOPNOTSUPP, ENOTSUPP
                    self.batch_ok = False
                    ran = 0
                gone += ran  # (stopped at a missing key: the rest one at a time)
                chunk = chunk[ran:]
            for key in chunk:
                self.key_view[:] = key
                if self.syscall(*self.delete_args) == 0:
                    gone += 1
        return gone


class RingReader:
    """The consumer side of a BPF_MAP_TYPE_RINGBUF (Linux 5.8): its consumer page mapped
    read-write, its producer page and data (mapped twice over, so a record that wraps is
    contiguous) read-only; `read()` takes every committed record and moves the consumer
    position past them — memory reads only, no system call (measured in the server: 0.73 µs
    an entry walked a record at a time in Python, one slice split by struct.iter_unpack
    now). (Plain loads: the ordering the
    kernel's release store needs from the reader is what x86 gives; capture_kernel uses a
    ring only there.)"""

    BUSY, DISCARD, HEADER = 1 << 31, 1 << 30, 8

    def __init__(self, fd: int, size: int) -> None:
        page = mmap.PAGESIZE
        self.page = page
        self.mask = size - 1
        self.consumer = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            self.data = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ,
                                  offset=page)  # fmt: skip
        except BaseException:
            self.consumer.close()
            raise

    def read(self, layout: struct.Struct) -> list[tuple]:
        """Every committed record, unpacked by `layout` (the record's 8-byte header first, as
        its first field and 4 pad bytes): the span between the two positions is copied at
        once and split in C when every record in it is layout's size (all this project's
        are); otherwise, a record at a time."""
        data, consumer = self.data, self.consumer
        start = _U64.unpack_from(consumer, 0)[0]
        produced = _U64.unpack_from(data, 0)[0]
        if produced <= start:
            return []
        size = layout.size
        if (produced - start) % size:
            return self._walk(layout, start, produced)
        off = self.page + (start & self.mask)
        out = []
        append, body = out.append, size - self.HEADER
        for record in layout.iter_unpack(data[off : off + (produced - start)]):
            if record[0] != body:  # (busy: not committed yet; or not one of ours)
                break
            append(record)
        if len(out) * size != produced - start and not out:
            return self._walk(layout, start, produced)
        _U64.pack_into(consumer, 0, start + len(out) * size)
        return out

    def _walk(self, layout: struct.Struct, start: int, produced: int) -> list[tuple]:
        """A record at a time: discarded ones skipped, stopping at one not committed."""
        data, page, mask = self.data, self.page, self.mask
        position, out = start, []
        while position < produced:
            off = page + (position & mask)
            header = _U32.unpack_from(data, off)[0]
            if header & self.BUSY:
                break
            length = header & ~(self.BUSY | self.DISCARD)
            if not header & self.DISCARD and length + self.HEADER == layout.size:
                out.append(layout.unpack_from(data, off))
            position += (length + self.HEADER + 7) & ~7
        if position != start:
            _U64.pack_into(self.consumer, 0, position)
        return out

    def close(self) -> None:
        for mapping in (self.consumer, self.data):
            try:
                mapping.close()
            except BufferError:
                pass
