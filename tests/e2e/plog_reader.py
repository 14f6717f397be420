# SPDX-License-Identifier: GPL-2.0-or-later
"""A reader of PANDA's plog container, written from the format's
description (PANDA's plog-cc.cpp/plog.c, as docs/formats.md restates it),
not from calltrace's writer, with its own minimal protobuf decoder:

- header at 0, little-endian: u32 version (2), u32 pad, u64 dir_pos,
  u32 chunk_size, u32 pad; the first chunk at byte 128;
- chunks back to back, each one zlib stream of entries framed as u32 length
  + serialized panda.LogEntry (pc = 1, instr = 2, call_stack = 10 holding
  CallStack { repeated uint64 addr = 1 }, extension 3001);
- at dir_pos: u32 num_chunks, then per chunk u64 start_instr, u64 pos,
  u64 num_entries.

read(path) checks every rule and returns the entries as dicts (PANDA's
placeholder first entry, pc and instr all ones, marked placeholder=True)."""
import struct
import zlib

ALL_ONES = (1 << 64) - 1


class PlogError(Exception):
    pass


def _varint(b, i):
    v = shift = 0
    while True:
        if i >= len(b):
            raise PlogError("truncated varint")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise PlogError("varint too long")


def _fields(b):
    """(field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = struct.unpack_from("<Q", b, i)[0], i + 8
        elif wt == 5:
            v, i = struct.unpack_from("<I", b, i)[0], i + 4
        elif wt == 2:
            n, i = _varint(b, i)
            if i + n > len(b):
                raise PlogError("truncated length-delimited field %d" % num)
            v, i = b[i:i + n], i + n
        else:
            raise PlogError("wire type %d" % wt)
        yield num, wt, v


def _callstack(b):
    addrs = []
    for num, wt, v in _fields(b):
        if num == 1 and wt == 0:
            addrs.append(v)
        elif num == 1 and wt == 2:          # packed form, also valid proto2
            j = 0
            while j < len(v):
                a, j = _varint(v, j)
                addrs.append(a)
    return addrs


def _entry(b):
    e = {}
    for num, wt, v in _fields(b):
        if num == 1 and wt == 0:
            e["pc"] = v
        elif num == 2 and wt == 0:
            e["instr"] = v
        elif num == 10 and wt == 2:
            e["callers"] = _callstack(v)
        elif num == 3001 and wt == 2:
            for n2, w2, v2 in _fields(v):
                key = {1: "stack", 2: "depth", 3: "function", 4: "module", 5: "return",
                       6: "func"}.get(n2)
                if key:
                    e[key] = v2.decode() if w2 == 2 else v2
    if "pc" not in e or "instr" not in e:
        raise PlogError("entry lacks a required pc or instr: %r" % e)
    return e


def read(path):
    data = open(path, "rb").read()
    if len(data) < 128:
        raise PlogError("%d bytes: no header" % len(data))
    version, _, dir_pos, chunk_size, _ = struct.unpack_from("<IIQII", data, 0)
    if version != 2:
        raise PlogError("version %d" % version)
    if not 128 <= dir_pos <= len(data) - 4:
        raise PlogError("dir_pos %d outside the file" % dir_pos)
    (nchunks,) = struct.unpack_from("<I", data, dir_pos)
    if dir_pos + 4 + 24 * nchunks != len(data):
        raise PlogError("directory of %d chunks does not end the file" % nchunks)
    chunks = [struct.unpack_from("<QQQ", data, dir_pos + 4 + 24 * i) for i in range(nchunks)]
    if not chunks or chunks[0][1] != 128:
        raise PlogError("first chunk not at 128: %r" % chunks[:1])
    entries, last_instr = [], None
    for i, (start_instr, pos, nent) in enumerate(chunks):
        end = chunks[i + 1][1] if i + 1 < nchunks else dir_pos
        if not pos < end <= dir_pos:
            raise PlogError("chunk %d bounds [%d, %d)" % (i, pos, end))
        if nent == 0:
            raise PlogError("chunk %d empty" % i)
        d = zlib.decompressobj()
        raw = d.decompress(data[pos:end])
        if not d.eof or d.unused_data:
            raise PlogError("chunk %d is not exactly one zlib stream" % i)
        if len(raw) > chunk_size:
            raise PlogError("chunk %d: %d bytes > chunk_size %d" % (i, len(raw), chunk_size))
        j, got, first = 0, 0, True
        while j < len(raw):
            (n,) = struct.unpack_from("<I", raw, j)
            if j + 4 + n > len(raw):
                raise PlogError("chunk %d: truncated entry" % i)
            e = _entry(raw[j + 4:j + 4 + n])
            j += 4 + n
            got += 1
            e["placeholder"] = not entries and e["pc"] == ALL_ONES and e["instr"] == ALL_ONES
            if not e["placeholder"]:
                if first and e["instr"] != start_instr:
                    raise PlogError("chunk %d: start_instr %d, first entry %d"
                                    % (i, start_instr, e["instr"]))
                if last_instr is not None and e["instr"] < last_instr:
                    raise PlogError("instr goes back: %d after %d" % (e["instr"], last_instr))
                first, last_instr = False, e["instr"]
            entries.append(e)
        if got != nent:
            raise PlogError("chunk %d: %d entries, directory says %d" % (i, got, nent))
    return entries
