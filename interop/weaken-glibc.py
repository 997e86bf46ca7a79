#!/usr/bin/env python3
"""Set VER_FLG_WEAK on an ELF64 module's GLIBC_<version> requirements at or above a version.

ld.so refuses to load a module whose required symbol version is missing, unless that
requirement is flagged weak. The symbols themselves must come from elsewhere (the shim).
Usage: weaken-glibc.py MODULE MIN_VERSION   e.g. weaken-glibc.py x.node 2.38
"""
import struct
import sys

VER_FLG_WEAK = 0x2
SHT_GNU_VERNEED = 0x6FFFFFFE


def version_tuple(text):
    return tuple(int(part) for part in text.split("."))


def main(path, minimum):
    elf = bytearray(open(path, "rb").read())
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        sys.exit(f"{path}: only little-endian ELF64 is supported")
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    weakened = 0
    for _name, kind, _flags, _addr, offset, _size, link, count, _align, _entsize in sections:
        if kind != SHT_GNU_VERNEED:
            continue
        strtab = sections[link][4]

        def name_at(off):
            start = strtab + off
            return elf[start:elf.index(b"\0", start)].decode()

        need = offset
        for _ in range(count):
            _ver, aux_count, _file, aux_off, next_off = struct.unpack_from("<HHIII", elf, need)
            aux = need + aux_off
            for _ in range(aux_count):
                _hash, flags, _other, name_off, aux_next = struct.unpack_from("<IHHII", elf, aux)
                name = name_at(name_off)
                if name.startswith("GLIBC_") and version_tuple(name[6:]) >= minimum and not flags & VER_FLG_WEAK:
                    struct.pack_into("<H", elf, aux + 4, flags | VER_FLG_WEAK)
                    weakened += 1
                    print(f"weak: {name}")
                aux += aux_next
            need += next_off
    open(path, "wb").write(elf)
    print(f"{weakened} requirement(s) made weak")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], version_tuple(sys.argv[2]))
